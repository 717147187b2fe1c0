// Follows Updates.Subscribe for as long as the console is open: on a dropped stream it reconnects with the last
// cursor (so nothing is missed or repeated), backing off up to 8 s; a stream silent for longer than the server's
// one-minute checkpoint is taken as dead and reopened.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Api } from "./api";
import type { Update } from "./gen/communities/v1/updates_pb";
import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb";

export type LiveState = "connecting" | "live" | "reconnecting" | "stopped";

export type LiveHandlers = {
  onUpdate: (update: Update) => void;
  onState: (state: LiveState) => void;
  // The cursor fell out of the server's retention: reload what the page shows (the stream restarts from now).
  onReload: () => void;
  onUnauthenticated: () => void;
};

const SILENCE_MS = 90_000;

export function follow(api: Api, handlers: LiveHandlers, stop: AbortSignal): void {
  void run(api, handlers, stop);
}

async function run(api: Api, handlers: LiveHandlers, stop: AbortSignal): Promise<void> {
  let cursor = "";
  let delay = 1000;
  let first = true;
  while (!stop.aborted) {
    handlers.onState(first ? "connecting" : "reconnecting");
    first = false;
    const attempt = new AbortController();
    const abort = () => attempt.abort();
    stop.addEventListener("abort", abort);
    let watchdog = setTimeout(abort, SILENCE_MS);
    try {
      for await (const update of api.updates.subscribe({ cursor }, { signal: attempt.signal })) {
        clearTimeout(watchdog);
        watchdog = setTimeout(abort, SILENCE_MS);
        if (update.cursor) cursor = update.cursor;
        if (update.event.case === "ready") {
          delay = 1000;
          handlers.onState("live");
        }
        handlers.onUpdate(update);
      }
    } catch (error) {
      if (stop.aborted) break;
      if (error instanceof ConnectError) {
        if (error.code === Code.Unauthenticated) {
          handlers.onState("stopped");
          handlers.onUnauthenticated();
          return;
        }
        if (error.findDetails(ErrorInfoSchema).some((info) => info.reason === "CURSOR_EXPIRED")) {
          cursor = "";
          handlers.onReload();
        }
      }
    } finally {
      clearTimeout(watchdog);
      stop.removeEventListener("abort", abort);
    }
    if (stop.aborted) break;
    handlers.onState("reconnecting");
    await sleep(delay, stop);
    delay = Math.min(delay * 2, 8000);
  }
  handlers.onState("stopped");
}

function sleep(ms: number, stop: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    stop.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      resolve();
    }
  });
}
