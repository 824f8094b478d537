import { type ScheduleRetry } from "cloudflare-durable";
import { TimerBase } from "../generated/timer";

/** `app.Timer`: calls itself later; each note it is asked to fire later is fired once. */
export class Timer extends TimerBase {
  /** Retries within a test: after 50 ms, doubling up to 200 ms, 4 runs. */
  static override scheduleRetry: ScheduleRetry = { attempts: 4, firstMs: 50, maxMs: 200 };

  override later(note: string, seconds: number): string {
    return this.schedule(seconds, "fire", note);
  }

  override at(note: string, when: string): string {
    return this.schedule(when, "fire", note);
  }

  override cancel(schedule_id: string): boolean {
    return this.cancelSchedule(schedule_id);
  }

  override fire(note: string): number {
    if (this.state.blocked) throw new Error(`blocked: ${note} not fired`);
    this.state.fired = [...this.state.fired, note];
    return this.state.fired.length;
  }

  override block(blocked: boolean): null {
    this.state.blocked = blocked;
    return null;
  }
}
