// The review app's script: upload and progress on the encounter page; on the review page, a
// note sentence highlights its evidence segments and plays that span of the audio.
'use strict';
const csrf = document.querySelector('meta[name="csrf"]')?.content;

const upload = document.getElementById('upload-form');
if (upload) {
  upload.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const file = document.getElementById('audio').files[0];
    const progress = document.getElementById('progress');
    if (!file) { progress.textContent = 'Choose a recording first.'; return; }
    progress.textContent = 'Uploading…';
    const twoChannel = document.getElementById('two-channel').checked ? '?two_channel=1' : '';
    const r = await fetch('/app/jobs' + twoChannel, { method: 'POST', body: file, headers: { 'X-CSRF-Token': csrf } });
    const body = await r.json();
    if (!r.ok) { progress.textContent = body.message || 'The upload was refused.'; return; }
    const job = body.job;
    for (;;) {
      const s = await (await fetch('/app/jobs/' + encodeURIComponent(job))).json();
      progress.textContent = 'Job ' + s.status.toLowerCase().replace('_', ' ') + '…';
      if (s.status === 'COMPLETED') { window.location = '/app/review/' + encodeURIComponent(job); return; }
      if (s.status === 'FAILED') { progress.textContent = 'The job failed: ' + (s.failure || ''); return; }
      await new Promise((res) => setTimeout(res, 1000));
    }
  });
}

for (const b of document.querySelectorAll('.sentence')) {
  b.addEventListener('click', () => {
    const ids = (b.dataset.evidence || '').split(' ').filter(Boolean);
    for (const s of document.querySelectorAll('.segment.highlight')) s.classList.remove('highlight');
    let start = null;
    for (const id of ids) {
      const seg = document.getElementById('seg-' + id);
      if (!seg) continue;
      seg.classList.add('highlight');
      const t = parseFloat(seg.dataset.begin);
      if (start === null || t < start) start = t;
    }
    const first = document.getElementById('seg-' + ids[0]);
    if (first) first.scrollIntoView({ block: 'nearest' });
    const audio = document.getElementById('audio-player');
    if (audio && start !== null) { audio.currentTime = start; audio.play().catch(() => {}); }
  });
}
