import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// The build goes into the Python package, so `communities serve` ships it without npm. File names carry content
// hashes only (no timestamps), so rebuilding unchanged sources changes nothing.
const outDir = fileURLToPath(new URL("../src/communities/web/static", import.meta.url));

// `npm run console:dev` serves the page with hot reload and sends API calls to a running `communities serve`.
const api = process.env.COMMUNITIES_CONSOLE_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir,
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    // No inline module preload helper: the server's Content-Security-Policy allows no inline script.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  server: {
    proxy: {
      "^/communities\\.v1\\.": { target: api },
      "/console/login": { target: api },
    },
  },
});
