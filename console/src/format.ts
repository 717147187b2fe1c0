import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export function when(at: Timestamp | undefined): string {
  return at ? dateTime.format(timestampDate(at)) : "";
}

export function isoWhen(at: Timestamp | undefined): string {
  return at ? timestampDate(at).toISOString() : "";
}

// "in 3 hours", "5 minutes ago".
export function fromNow(at: Timestamp | undefined, now = Date.now()): string {
  if (!at) return "";
  const seconds = (timestampDate(at).getTime() - now) / 1000;
  const units: [Intl.RelativeTimeFormatUnit, number][] = [
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return relative.format(Math.round(seconds), "second");
}

// Max age choices for an invite, in seconds (the API allows 0..604800; 0 = never).
export const MAX_AGES: [number, string][] = [
  [1800, "30 minutes"],
  [3600, "1 hour"],
  [21600, "6 hours"],
  [43200, "12 hours"],
  [86400, "1 day"],
  [604800, "7 days"],
  [0, "Never"],
];

// Max uses choices (the API allows 0..100; 0 = no limit).
export const MAX_USES: [number, string][] = [
  [0, "No limit"],
  [1, "1 use"],
  [5, "5 uses"],
  [10, "10 uses"],
  [25, "25 uses"],
  [50, "50 uses"],
  [100, "100 uses"],
];
