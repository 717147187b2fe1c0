import { useState } from "preact/hooks";
import type { Problem } from "./errors";

export function ProblemView({ problem, id }: { problem: Problem | null; id?: string }) {
  if (!problem) return null;
  return (
    <div class="problem" role="alert" id={id}>
      <p>{problem.text}</p>
      {problem.lines.length > 0 && (
        <ul>
          {problem.lines.map((line, index) => (
            <li key={index}>{line}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState<string>("");
  async function copy() {
    try {
      await navigator.clipboard.writeText(text);
      setDone("Copied");
    } catch {
      setDone("Copy failed: select the code and copy it by hand");
    }
    setTimeout(() => setDone(""), 4000);
  }
  return (
    <span class="copy">
      <button type="button" onClick={copy} aria-label={`${label}: copy ${text}`}>
        Copy
      </button>
      <span role="status" class="copy-status">
        {done}
      </span>
    </span>
  );
}
