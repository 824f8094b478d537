/**
 * Datetimes, dates and UUIDs as text, read the way pydantic reads them from
 * JSON in strict mode and written the way pydantic writes them back, so a value
 * stored by the Worker is the value a Python host would have stored.
 *
 * Accepted datetimes: `YYYY-MM-DD`, a separator (`T`, `t`, `_` or a space),
 * `HH:MM`, optional `:SS` and a fraction (`.` or `,`, digits beyond the sixth
 * dropped), then optionally `Z`, `z` or `±HH[:]MM`; or a Unix timestamp in
 * seconds (milliseconds when its magnitude is over 2e10). Dates are
 * `YYYY-MM-DD`, or a timestamp at midnight UTC.
 */

/** Why a text was refused (pydantic's wording, after "Input should be a valid ..., "). */
export interface ParseError {
  error: string;
}

const MAX_SECONDS = 253_402_300_799; // 9999-12-31T23:59:59Z
const MIN_SECONDS = -62_135_596_800; // 0001-01-01T00:00:00Z
const MS_THRESHOLD = 20_000_000_000;

interface Fields {
  year: number;
  month: number;
  day: number;
}

function digits(text: string, start: number, count: number): number | null {
  let value = 0;
  for (let i = start; i < start + count; i++) {
    const code = text.charCodeAt(i);
    if (!(code >= 48 && code <= 57)) return null;
    value = value * 10 + (code - 48);
  }
  return value;
}

function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function parseDatePart(text: string): Fields | ParseError {
  if (text.length < 10) return { error: "input is too short" };
  const year = digits(text, 0, 4);
  if (year === null) return { error: "invalid character in year" };
  if (text[4] !== "-") return { error: "invalid date separator, expected `-`" };
  const month = digits(text, 5, 2);
  if (month === null) return { error: "invalid character in month" };
  if (text[7] !== "-") return { error: "invalid date separator, expected `-`" };
  const day = digits(text, 8, 2);
  if (day === null) return { error: "invalid character in day" };
  if (year === 0) return { error: "year 0 is out of range" };
  if (month < 1 || month > 12) return { error: "month value is outside expected range of 1-12" };
  if (day < 1 || day > daysIn(year, month)) return { error: "day value is outside expected range" };
  return { year, month, day };
}

const pad = (value: number, width = 2) => String(value).padStart(width, "0");

function formatDate({ year, month, day }: Fields): string {
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}`;
}

/** A Unix timestamp as text (`-12`, `+5`, `1700000000.5`, `.5`), or null when the text is not one. */
function parseTimestamp(text: string, integerOnly = false): { seconds: number; micros: number } | null {
  const match = (integerOnly ? /^([+-]?)(\d+)()$/ : /^([+-]?)(\d*)(?:\.(\d*))?$/).exec(text);
  if (match === null) return null;
  const [, sign, whole = "", fraction = ""] = match;
  if (whole === "" && fraction === "") return null;
  let value = Number(`${whole || "0"}.${fraction || "0"}`);
  if (!Number.isFinite(value)) return null;
  if (value > MS_THRESHOLD) value /= 1000;
  const negative = sign === "-";
  let seconds = Math.floor(value);
  let micros = Math.round((value - seconds) * 1_000_000);
  if (micros === 1_000_000) {
    seconds += 1;
    micros = 0;
  }
  if (negative) {
    seconds = -seconds;
    if (micros !== 0) {
      seconds -= 1;
      micros = 1_000_000 - micros;
    }
  }
  return { seconds, micros };
}

function fromSeconds(seconds: number): { date: Fields; time: number } {
  const days = Math.floor(seconds / 86_400);
  const date = new Date(days * 86_400_000);
  return {
    date: { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() },
    time: seconds - days * 86_400,
  };
}

/** A `YYYY-MM-DD` date, normalised; or why not. */
export function parseDate(text: string): string | ParseError {
  const date = parseDatePart(text);
  if ("error" in date) return dateFromTimestamp(text) ?? date;
  if (text.length > 10) return { error: "unexpected extra characters at the end of the input" };
  return formatDate(date);
}

function dateFromTimestamp(text: string): string | ParseError | null {
  const stamp = parseTimestamp(text, true);
  if (stamp === null) return null;
  if (stamp.seconds > MAX_SECONDS || stamp.seconds < MIN_SECONDS) return { error: "date is not in the expected range" };
  const { date, time } = fromSeconds(stamp.seconds);
  if (time !== 0 || stamp.micros !== 0) return { error: "Timestamp is not an exact date" };
  return formatDate(date);
}

/** A datetime, normalised as pydantic writes it; or why not. */
export function parseDateTime(text: string): string | ParseError {
  const date = parseDatePart(text);
  if ("error" in date) return dateTimeFromTimestamp(text) ?? date;
  if (text.length === 10) return { error: "input is too short" };
  if (!"Tt_ ".includes(text[10]!)) return { error: "invalid datetime separator, expected `T`, `t`, `_` or space" };
  const time = parseTime(text, 11);
  if ("error" in time) return time;
  const offset = parseOffset(text, time.end);
  if (offset !== null && typeof offset === "object") return offset;
  const fraction = time.micros === 0 ? "" : `.${pad(time.micros, 6)}`;
  const zone = offset === null ? "" : formatOffset(offset);
  return `${formatDate(date)}T${pad(time.hour)}:${pad(time.minute)}:${pad(time.second)}${fraction}${zone}`;
}

function dateTimeFromTimestamp(text: string): string | ParseError | null {
  const stamp = parseTimestamp(text);
  if (stamp === null) return null;
  if (stamp.seconds > MAX_SECONDS || stamp.seconds < MIN_SECONDS) return { error: "datetime is not in the expected range" };
  const { date, time } = fromSeconds(stamp.seconds);
  const hour = Math.floor(time / 3600);
  const minute = Math.floor((time % 3600) / 60);
  const second = time % 60;
  const fraction = stamp.micros === 0 ? "" : `.${pad(stamp.micros, 6)}`;
  return `${formatDate(date)}T${pad(hour)}:${pad(minute)}:${pad(second)}${fraction}Z`;
}

interface TimeFields {
  hour: number;
  minute: number;
  second: number;
  micros: number;
  end: number;
}

function parseTime(text: string, start: number): TimeFields | ParseError {
  if (text.length < start + 5) return { error: "input is too short" };
  const hour = digits(text, start, 2);
  if (hour === null) return { error: "invalid character in hour" };
  if (text[start + 2] !== ":") return { error: "invalid time separator, expected `:`" };
  const minute = digits(text, start + 3, 2);
  if (minute === null) return { error: "invalid character in minute" };
  if (hour > 23) return { error: "hour value is outside expected range of 0-23" };
  if (minute > 59) return { error: "minute value is outside expected range of 0-59" };
  let end = start + 5;
  let second = 0;
  let micros = 0;
  if (text[end] === ":") {
    const parsed = digits(text, end + 1, 2);
    if (parsed === null || end + 3 > text.length) return { error: "invalid character in second" };
    if (parsed > 59) return { error: "second value is outside expected range of 0-59" };
    second = parsed;
    end += 3;
    if (text[end] === "." || text[end] === ",") {
      let count = 0;
      let i = end + 1;
      while (i < text.length && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) {
        if (count < 6) micros = micros * 10 + (text.charCodeAt(i) - 48);
        count++;
        i++;
      }
      if (count === 0) return { error: "second fraction digits missing after `.`" };
      for (let k = count; k < 6; k++) micros *= 10;
      end = i;
    }
  }
  return { hour, minute, second, micros, end };
}

/** The UTC offset in minutes, null for none, or why not. */
function parseOffset(text: string, start: number): number | null | ParseError {
  if (start === text.length) return null;
  const sign = text[start];
  if (sign === "Z" || sign === "z") {
    return start + 1 === text.length ? 0 : { error: "unexpected extra characters at the end of the input" };
  }
  if (sign !== "+" && sign !== "-") return { error: "invalid timezone sign" };
  const hours = digits(text, start + 1, 2);
  if (hours === null || start + 3 > text.length) return { error: "invalid timezone hour" };
  let i = start + 3;
  if (text[i] === ":") i++;
  const minutes = digits(text, i, 2);
  if (minutes === null || i + 2 > text.length) return { error: "invalid timezone minute" };
  if (minutes > 59) return { error: "timezone minute value is outside expected range of 0-59" };
  if (i + 2 !== text.length) return { error: "unexpected extra characters at the end of the input" };
  const total = hours * 60 + minutes;
  if (total >= 24 * 60) return { error: "timezone offset must be less than 24 hours" };
  return sign === "-" ? -total : total;
}

function formatOffset(minutes: number): string {
  if (minutes === 0) return "Z";
  const sign = minutes < 0 ? "-" : "+";
  const total = Math.abs(minutes);
  return `${sign}${pad(Math.floor(total / 60))}:${pad(total % 60)}`;
}

const HEX = /^[0-9a-fA-F]*$/;

/** A UUID in any of the forms Python's `uuid` and pydantic accept, as lowercase hyphenated text; or why not. */
export function parseUuid(text: string): string | ParseError {
  let body = text;
  if (body.length === 45 && body.slice(0, 9).toLowerCase() === "urn:uuid:") body = body.slice(9);
  else if (body.length === 38 && body.startsWith("{") && body.endsWith("}")) body = body.slice(1, -1);
  let hex: string;
  if (body.length === 32) {
    hex = body;
  } else if (body.length === 36) {
    const groups = body.split("-");
    if (groups.length !== 5) return { error: `invalid group count: expected 5, found ${groups.length}` };
    const lengths = [8, 4, 4, 4, 12];
    for (const [index, group] of groups.entries()) {
      if (group.length !== lengths[index]) {
        return { error: `invalid group length in group ${index}: expected ${lengths[index]}, found ${group.length}` };
      }
    }
    hex = groups.join("");
  } else {
    const groups = body.split("-");
    if (groups.length > 1 && groups.length !== 5) return { error: `invalid group count: expected 5, found ${groups.length}` };
    return { error: `invalid length: expected length 32 for simple format, found ${body.length}` };
  }
  if (!HEX.test(hex)) {
    const index = [...hex].findIndex((c) => !HEX.test(c));
    return { error: `invalid character: expected an optional prefix of \`urn:uuid:\` followed by [0-9a-fA-F-], found \`${hex[index]}\` at ${index + 1}` };
  }
  const lower = hex.toLowerCase();
  return `${lower.slice(0, 8)}-${lower.slice(8, 12)}-${lower.slice(12, 16)}-${lower.slice(16, 20)}-${lower.slice(20)}`;
}
