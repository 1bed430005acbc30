// The pool list: pages of GET /pools in id order, and a box to jump to a pool id.

import { api } from './api.js';
import { formatNumber, h } from './dom.js';

interface PoolPage {
  pools: { poolId: number; count: number }[];
  next: number | null;
}

const PAGE_SIZE = 50;

export async function showPools(view: HTMLElement, after: number | null): Promise<void> {
  const query = after === null ? `limit=${PAGE_SIZE}` : `limit=${PAGE_SIZE}&after=${after}`;
  const page = await api<PoolPage>(`/pools?${query}`);
  const jump = h('input', { type: 'number', min: '0', step: '1', placeholder: 'pool id', 'data-testid': 'jump-id', required: '' });
  const form = h('form', { class: 'inline' }, jump, h('button', { type: 'submit' }, 'Open pool'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = `#/pools/${jump.value}`;
  });
  const rows = page.pools.map((p) =>
    h(
      'tr',
      {},
      h('td', {}, h('a', { href: `#/pools/${p.poolId}`, 'data-testid': 'pool-link' }, String(p.poolId))),
      h('td', { class: 'num' }, formatNumber(p.count)),
    ),
  );
  const table =
    rows.length === 0
      ? h('p', {}, after === null ? 'No pools yet: open a pool id above and append values or upload a file.' : 'No more pools.')
      : h(
          'table',
          { 'data-testid': 'pool-table' },
          h('thead', {}, h('tr', {}, h('th', {}, 'pool'), h('th', { class: 'num' }, 'values'))),
          h('tbody', {}, ...rows),
        );
  const nav = h('p', { class: 'pager' });
  if (after !== null) nav.append(h('a', { href: '#/pools' }, '« first page'), ' ');
  if (page.next !== null) nav.append(h('a', { href: `#/pools?after=${page.next}`, 'data-testid': 'next-page' }, 'next page »'));
  view.replaceChildren(h('h1', {}, 'Pools'), form, table, nav);
}
