// The dashboard as one HTML file (script and style inline), dist/app.html: the file the services
// embed and an auditor can open from disk. Built the same way every time: no timestamps, no
// absolute paths, module preload polyfill off (it would add a second inline script).
import { defineConfig, type Plugin } from 'vite';
import { viteSingleFile } from 'vite-plugin-singlefile';

const renameToApp: Plugin = {
  name: 'a2a-ledger-app-html',
  enforce: 'post',
  generateBundle(_options, bundle) {
    const page = bundle['index.html'];
    if (page) page.fileName = 'app.html';
  },
};

export default defineConfig({
  base: './',
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: false,
    reportCompressedSize: false,
    sourcemap: false,
  },
  plugins: [viteSingleFile({ removeViteModuleLoader: true }), renameToApp],
});
