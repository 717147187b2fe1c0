import { useEffect, useState } from "preact/hooks";
import { makeApi } from "./api";
import {
  authorizationFor,
  clearSession,
  exchangeLoginCode,
  LoginError,
  loadSession,
  saveSession,
  takeLoginCode,
  type Session,
} from "./auth";
import { Console } from "./Console";
import { describeError, type Problem } from "./errors";
import { ProblemView } from "./ui";

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [busy, setBusy] = useState(true);
  const [problem, setProblem] = useState<Problem | null>(null);

  useEffect(() => {
    const code = takeLoginCode();
    if (code === null) {
      setSession(loadSession());
      setBusy(false);
      return;
    }
    exchangeLoginCode(code)
      .then((signedIn) => {
        saveSession(signedIn);
        setSession(signedIn);
      })
      .catch((error) => {
        clearSession();
        setProblem({ text: error instanceof LoginError ? error.message : String(error), lines: [] });
      })
      .finally(() => setBusy(false));
  }, []);

  function signOut(reason: Problem | null) {
    clearSession();
    setSession(null);
    setProblem(reason);
  }

  if (busy) {
    return (
      <main id="main" class="narrow">
        <p role="status">Signing in…</p>
      </main>
    );
  }
  if (!session) {
    return (
      <SignIn
        problem={problem}
        onSignedIn={(signedIn) => {
          saveSession(signedIn);
          setProblem(null);
          setSession(signedIn);
        }}
      />
    );
  }
  return (
    <Console
      session={session}
      onSignOut={() => signOut(null)}
      onUnauthenticated={() =>
        signOut({ text: "Your sign-in is not valid any more (the token expired or was revoked). Sign in again.", lines: [] })
      }
    />
  );
}

function SignIn({ problem, onSignedIn }: { problem: Problem | null; onSignedIn: (session: Session) => void }) {
  const [kind, setKind] = useState<"Bearer" | "Bot">("Bearer");
  const [token, setToken] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Problem | null>(null);

  async function submit(event: Event) {
    event.preventDefault();
    const authorization = authorizationFor(kind, token);
    setBusy(true);
    setError(null);
    try {
      const self = await makeApi(authorization).users.getSelf({});
      onSignedIn({ authorization, userId: self.id.toString(), name: self.name });
    } catch (caught) {
      const described = describeError(caught);
      setError(
        described.reason === "UNAUTHENTICATED"
          ? { ...described, text: "The server did not accept that token. Check it, and whether it is a person's or a bot's." }
          : described,
      );
    } finally {
      setBusy(false);
    }
  }

  return (
    <main id="main" class="narrow">
      <h1>Communities console</h1>
      <ProblemView problem={problem} />
      <section aria-labelledby="sign-in-heading" class="card">
        <h2 id="sign-in-heading">Sign in</h2>
        <p>
          Open the one-time login link that <code>communities console-link USER_ID</code> prints, or paste a token
          here. The token is kept only while this tab is open.
        </p>
        <form onSubmit={submit}>
          <fieldset>
            <legend>Token kind</legend>
            <label class="choice">
              <input type="radio" name="kind" checked={kind === "Bearer"} onChange={() => setKind("Bearer")} />
              Person (sent as <code>Bearer</code> token)
            </label>
            <label class="choice">
              <input type="radio" name="kind" checked={kind === "Bot"} onChange={() => setKind("Bot")} />
              Bot (sent as <code>Bot</code> token)
            </label>
          </fieldset>
          <label for="token">Token</label>
          <input
            id="token"
            type="password"
            autoComplete="off"
            spellcheck={false}
            required
            value={token}
            onInput={(event) => setToken((event.target as HTMLInputElement).value)}
            aria-describedby="token-help"
          />
          <p id="token-help" class="help">
            The <code>cmt_…</code> token <code>communities users create</code> printed.
          </p>
          <ProblemView problem={error} />
          <button type="submit" disabled={busy}>
            {busy ? "Signing in…" : "Sign in"}
          </button>
        </form>
      </section>
    </main>
  );
}
