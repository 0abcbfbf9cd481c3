// The `schedule:` section of an experiment file: when a game day runs. A cron expression (5 or 6
// fields, read by croner in `timezone`) gives the candidate times; `windows` (local wall-clock times
// in `timezone`, on some weekdays) and `blackouts` (absolute intervals) say which of them are
// allowed. A window is [from, to): one whose `from` is after its `to` spans midnight, and its `days`
// name the day it starts on (fri 22:00–02:00 covers Friday night into Saturday). "24:00" is allowed
// as a `to`. A blackout is [from, to) too. No windows means every time is inside a window.
import { Cron } from 'croner';
import { z } from 'zod';
import { Duration } from '../config/primitives.ts';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
type Day = (typeof DAYS)[number];

const CRON_MODE = '5-or-6-parts';

const CronExpression = z
  .string()
  .superRefine((text, ctx) => {
    try {
      new Cron(text, { mode: CRON_MODE, paused: true });
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `not a valid cron expression: ${(error as Error).message}` });
    }
  })
  .meta({ description: 'a 5-field (minute precision) or 6-field (seconds first) cron expression' });

const TimeZone = z
  .string()
  .superRefine((name, ctx) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: name });
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `not a known IANA time zone (${(error as Error).message}); e.g. "Europe/Berlin", "UTC"` });
    }
  });

const TIME = /^([01]\d|2[0-3]):[0-5]\d$/;
const From = z.string().regex(TIME, { error: 'expected a time "HH:MM", from 00:00 to 23:59' });
const To = z.string().refine((t) => TIME.test(t) || t === '24:00', { error: 'expected a time "HH:MM", from 00:00 to 24:00' });

const Window = z
  .strictObject({
    days: z.array(z.enum(DAYS)).min(1).optional().meta({ description: 'the days the window starts on; all when omitted' }),
    from: From,
    to: To.meta({ description: 'before `from`: the window spans midnight' }),
  })
  .refine((w) => w.from !== w.to, { error: 'from and to are the same time: for a whole day, write from "00:00" to "24:00"', path: ['to'] });

const Blackout = z
  .strictObject({
    from: z.iso.datetime({ offset: true }),
    to: z.iso.datetime({ offset: true }),
  })
  .refine((b) => Date.parse(b.to) > Date.parse(b.from), { error: 'to must be after from', path: ['to'] });

export const ScheduleSpec = z
  .strictObject({
    cron: CronExpression,
    timezone: TimeZone.default('UTC').meta({ description: 'IANA time zone of the cron expression and the windows' }),
    windows: z.array(Window).default([]).meta({ description: 'when runs are allowed, in `timezone`; none: always' }),
    blackouts: z.array(Blackout).default([]).meta({ description: 'intervals in which nothing runs (datetimes with an offset)' }),
    overlap: z.enum(['wait', 'skip']).default('skip').meta({
      description: 'when an experiment on overlapping targets is running: skip this run, or wait for it to finish',
    }),
    maxWait: Duration.default(15 * 60_000).meta({ description: 'with overlap: wait, how long to wait before skipping the run' }),
  })
  .superRefine((schedule, ctx) => {
    try {
      if (new Cron(schedule.cron, { mode: CRON_MODE, timezone: schedule.timezone, paused: true }).nextRun() === null) {
        ctx.addIssue({ code: 'custom', path: ['cron'], message: 'the cron expression never fires' });
      }
    } catch {
      // already reported by the field's own check
    }
  });

export type ScheduleConfig = z.output<typeof ScheduleSpec>;
export type WindowConfig = ScheduleConfig['windows'][number];

const crons = new WeakMap<ScheduleConfig, Cron>();

function cronOf(schedule: ScheduleConfig): Cron {
  let cron = crons.get(schedule);
  if (!cron) {
    cron = new Cron(schedule.cron, { mode: CRON_MODE, timezone: schedule.timezone, paused: true });
    crons.set(schedule, cron);
  }
  return cron;
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** The weekday (0 = monday) and the minute of the day of `at`, on the wall clock of `timezone`. */
function wallClock(timezone: string, at: Date): { day: number; minute: number } {
  let format = formats.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: timezone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formats.set(timezone, format);
  }
  let day = 0;
  let minute = 0;
  for (const part of format.formatToParts(at)) {
    if (part.type === 'weekday') day = DAYS.indexOf(part.value.toLowerCase() as Day);
    else if (part.type === 'hour') minute += Number(part.value) * 60;
    else if (part.type === 'minute') minute += Number(part.value);
  }
  return { day, minute };
}

const minutes = (time: string): number => Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5));
const onDay = (window: WindowConfig, day: number): boolean => window.days === undefined || window.days.includes(DAYS[(day + 7) % 7]!);

function inWindow(window: WindowConfig, day: number, minute: number): boolean {
  const from = minutes(window.from);
  const to = minutes(window.to);
  if (from < to) return onDay(window, day) && minute >= from && minute < to;
  return (onDay(window, day) && minute >= from) || (onDay(window, day - 1) && minute < to);
}

/** Minutes from `minute` of `day` to the next start of `window` (more than 0). */
function toNextStart(window: WindowConfig, day: number, minute: number): number {
  const from = minutes(window.from);
  for (let k = 0; k <= 7; k++) {
    const delta = k * 1440 + from - minute;
    if (delta > 0 && onDay(window, day + k)) return delta;
  }
  return Infinity;
}

function blackoutAt(schedule: ScheduleConfig, time: number): number | undefined {
  for (const b of schedule.blackouts) {
    const to = Date.parse(b.to);
    if (time >= Date.parse(b.from) && time < to) return to;
  }
  return undefined;
}

/** Whether `at` is inside an allowed window and outside every blackout. */
export function allowedAt(schedule: ScheduleConfig, at: Date): boolean {
  if (blackoutAt(schedule, at.getTime()) !== undefined) return false;
  if (schedule.windows.length === 0) return true;
  const { day, minute } = wallClock(schedule.timezone, at);
  return schedule.windows.some((w) => inWindow(w, day, minute));
}

const MINUTE = 60_000;
/** Daylight-saving shifts are at most this long: a jump computed on the wall clock stops this far short. */
const SHIFT = 120 * MINUTE;
/** The search gives up after this long without an allowed time (a cron that never meets a window). */
const HORIZON = 5 * 366 * 24 * 60 * MINUTE;

/**
 * A time no later than the next allowed one, for a disallowed cron time: the end of the blackout it is
 * in, and (outside every window) the next window start, less a daylight-saving margin.
 */
function skipFrom(schedule: ScheduleConfig, at: Date): number {
  const time = at.getTime();
  let target = time + 1;
  const blackoutEnd = blackoutAt(schedule, time);
  if (blackoutEnd !== undefined) target = Math.max(target, blackoutEnd);
  if (schedule.windows.length > 0) {
    const { day, minute } = wallClock(schedule.timezone, at);
    if (!schedule.windows.some((w) => inWindow(w, day, minute))) {
      const delta = Math.min(...schedule.windows.map((w) => toNextStart(w, day, minute)));
      const minuteStart = time - (time % MINUTE);
      target = Math.max(target, minuteStart + Math.max(MINUTE, delta * MINUTE - SHIFT));
    }
  }
  return target;
}

/**
 * The allowed run times strictly after `after`, in order. Ends when the cron expression has no more
 * times, or when none is allowed within five years of the previous one.
 */
export function* allowedTimes(schedule: ScheduleConfig, after: Date): Generator<Date, void, undefined> {
  const cron = cronOf(schedule);
  let cursor = after;
  let since = after.getTime();
  for (;;) {
    const candidate = cron.nextRun(cursor);
    if (candidate === null || candidate.getTime() - since > HORIZON) return;
    if (allowedAt(schedule, candidate)) {
      yield candidate;
      cursor = candidate;
      since = candidate.getTime();
    } else {
      // croner looks strictly after the whole second of its reference: 1 ms before `skipFrom` lets a
      // cron time exactly there count.
      cursor = new Date(skipFrom(schedule, candidate) - 1);
    }
  }
}

/** The next `count` run times after `from` that are allowed (cron times outside windows/inside blackouts are skipped). */
export function upcoming(schedule: ScheduleConfig, from: Date, count: number): Date[] {
  const times: Date[] = [];
  if (count <= 0) return times;
  for (const time of allowedTimes(schedule, from)) {
    times.push(time);
    if (times.length >= count) break;
  }
  return times;
}
