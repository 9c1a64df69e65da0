import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The admin console: built into dist/console and served by the admin listener (src/admin/console.ts)
// under a strict CSP, so the build must emit files only: no inline script, style or data: font.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  publicDir: 'public',
  // Preact's JSX through Vite's own transform (no Babel preset needed).
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    cssCodeSplit: false,
    sourcemap: false,
    reportCompressedSize: true,
  },
  // `npx vite --config console/vite.config.ts`: the UI with hot reload against a gateway's admin
  // listener on 127.0.0.1:9901 (RAMPART_ADMIN_URL to change it).
  server: {
    host: '127.0.0.1',
    proxy: { '/api': { target: process.env.RAMPART_ADMIN_URL ?? 'http://127.0.0.1:9901', changeOrigin: false } },
  },
});
