/** A client WebSocket whose frames are read one at a time, in order. */

export interface Closed {
  closed: true;
  code: number;
  reason: string;
}

type Incoming = unknown | Closed;

export class FrameQueue {
  private readonly frames: Incoming[] = [];
  /** Every frame received, for failure messages. */
  private readonly log: Incoming[] = [];
  private waiter: ((frame: Incoming) => void) | null = null;

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (event) => this.push(parse(event.data)));
    ws.addEventListener("close", (event) => this.push({ closed: true, code: event.code, reason: event.reason }));
  }

  /** Accepts the client end of an upgraded response. */
  static accept(res: Response): FrameQueue {
    const ws = res.webSocket;
    if (ws === null) throw new Error(`expected a WebSocket, got status ${res.status}`);
    ws.accept();
    return new FrameQueue(ws);
  }

  private push(frame: Incoming): void {
    this.log.push(frame);
    if (this.waiter !== null) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter(frame);
    } else {
      this.frames.push(frame);
    }
  }

  send(text: string | ArrayBuffer): void {
    this.ws.send(text);
  }

  /** The next frame (parsed JSON) or close notice; fails after `timeoutMs`. */
  next(timeoutMs = 3_000): Promise<Incoming> {
    if (this.frames.length > 0) return Promise.resolve(this.frames.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no frame within ${timeoutMs} ms; received so far: ${JSON.stringify(this.log)}`));
      }, timeoutMs);
      this.waiter = (frame) => {
        clearTimeout(timer);
        resolve(frame);
      };
    });
  }

  /** Frames already received and not yet read. */
  pending(): number {
    return this.frames.length;
  }

  close(): void {
    try {
      this.ws.close(1000, "done");
    } catch {
      // Already closed.
    }
  }
}

function parse(data: unknown): unknown {
  return typeof data === "string" ? JSON.parse(data) : data;
}
