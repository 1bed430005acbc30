// The dashboard's entry: hash routes (#/pools, #/pools?after=ID, #/pools/ID,
// #/server) to the three pages; leaving a page stops its live updates.

import { h } from './dom.js';
import { showPool } from './pool-page.js';
import { showPools } from './pools-page.js';
import { showServer } from './server-page.js';

const view = document.getElementById('view') as HTMLElement;
let stop: (() => void) | null = null;

function route(): void {
  stop?.();
  stop = null;
  const hash = location.hash || '#/pools';
  for (const link of document.querySelectorAll<HTMLAnchorElement>('nav a'))
    link.classList.toggle('active', hash.startsWith(`#/${link.dataset.nav}`));
  const pool = /^#\/pools\/(\d+)$/.exec(hash);
  if (pool !== null) {
    stop = showPool(view, Number(pool[1]));
    return;
  }
  if (hash === '#/server') {
    stop = showServer(view);
    return;
  }
  const after = /^#\/pools\?after=(\d+)$/.exec(hash);
  showPools(view, after === null ? null : Number(after[1])).catch((err: Error) =>
    view.replaceChildren(h('p', { class: 'error' }, err.message)),
  );
}

window.addEventListener('hashchange', route);
route();
