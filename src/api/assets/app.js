// The review app's script. Encounter page: upload (or a browser recording, recorder.js) and
// job progress. Review page: a note sentence highlights its evidence segments and plays that
// span of the audio; edits are sent one at a time and saved by the server before it answers.
'use strict';
const csrf = document.querySelector('meta[name="csrf"]')?.content;

// Uploads a recording, then follows the job until its review page can open.
window.fhirscribeUpload = async (blob, twoChannel) => {
  const progress = document.getElementById('progress');
  const say = (t) => { if (progress) progress.textContent = t; };
  say('Uploading…');
  const r = await fetch('/app/jobs' + (twoChannel ? '?two_channel=1' : ''), {
    method: 'POST', body: blob, headers: { 'X-CSRF-Token': csrf },
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { say(body.message || 'The upload was refused.'); return; }
  const job = body.job;
  for (;;) {
    const s = await (await fetch('/app/jobs/' + encodeURIComponent(job))).json();
    say('Job ' + String(s.status).toLowerCase().replace('_', ' ') + '…');
    if (s.status === 'COMPLETED') { window.location = '/app/review/' + encodeURIComponent(job); return; }
    if (s.status === 'FAILED') { say('The job failed: ' + (s.failure || '')); return; }
    await new Promise((res) => setTimeout(res, 1000));
  }
};

const upload = document.getElementById('upload-form');
if (upload) {
  upload.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const file = document.getElementById('audio').files[0];
    if (!file) { document.getElementById('progress').textContent = 'Choose a recording first.'; return; }
    window.fhirscribeUpload(file, document.getElementById('two-channel').checked);
  });
}

// --- Review page -----------------------------------------------------------------------
const columns = document.querySelector('.columns[data-job]');
const job = columns?.dataset.job;
const status = document.getElementById('review-status');
const say = (t) => { if (status) status.textContent = t; };
const audio = document.getElementById('audio-player');
let stopAt = null;
if (audio) {
  audio.addEventListener('timeupdate', () => {
    if (stopAt !== null && audio.currentTime >= stopAt) { audio.pause(); stopAt = null; }
  });
}

function showEvidence(button) {
  const ids = (button.dataset.evidence || '').split(' ').filter(Boolean);
  for (const s of document.querySelectorAll('.segment.highlight')) s.classList.remove('highlight');
  for (const s of document.querySelectorAll('.sentence[aria-pressed="true"]')) s.setAttribute('aria-pressed', 'false');
  button.setAttribute('aria-pressed', 'true');
  let start = null;
  let end = null;
  for (const id of ids) {
    const seg = document.getElementById('seg-' + id);
    if (!seg) continue;
    seg.classList.add('highlight');
    const b = parseFloat(seg.dataset.begin);
    const e = parseFloat(seg.dataset.end);
    if (start === null || b < start) start = b;
    if (end === null || e > end) end = e;
  }
  if (!ids.length) { say('Clinician-written: no evidence in the recording.'); return; }
  const first = document.getElementById('seg-' + ids[0]);
  if (first) first.scrollIntoView({ block: 'nearest' });
  if (audio && start !== null) {
    audio.currentTime = start;
    stopAt = end;
    audio.play().catch(() => {});
  }
}

// Sends one edit; the server answers the saved review (or why it refused).
async function send(edit) {
  say('Saving…');
  const r = await fetch('/app/review/' + encodeURIComponent(job) + '/edits', {
    method: 'POST', body: JSON.stringify(edit),
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { say('Not saved: ' + (body.message || r.status)); return null; }
  say('Saved.');
  return body;
}

function findSentence(review, id) {
  for (const sec of review.sections) for (const s of sec.sentences) if (s.id === id) return s;
  return null;
}

function setTag(row, text) {
  let tag = row.querySelector('.tag');
  if (!text) { if (tag) tag.remove(); return; }
  if (!tag) {
    tag = document.createElement('span');
    tag.className = 'tag';
    row.querySelector('.sentence').after(tag);
  }
  tag.textContent = text;
}

function render(row, s) {
  row.querySelector('.sentence').textContent = s.text;
  row.classList.toggle('removed', s.removed);
  row.className = row.className.replace(/origin-\S+/, 'origin-' + s.origin);
  setTag(row, s.removed ? 'removed' : s.origin === 'edited' ? 'edited' : s.origin === 'clinician' ? 'clinician-written' : '');
  const t = row.querySelector('.toggle');
  if (t) { t.textContent = s.removed ? 'Restore' : 'Remove'; t.setAttribute('aria-label', t.textContent + ' this sentence'); }
}

function startEdit(row) {
  if (row.querySelector('textarea')) return;
  const button = row.querySelector('.sentence');
  const box = document.createElement('div');
  box.className = 'editor';
  const label = document.createElement('label');
  label.textContent = 'Sentence';
  label.htmlFor = 'edit-' + row.dataset.id;
  label.className = 'visually-hidden';
  const area = document.createElement('textarea');
  area.id = 'edit-' + row.dataset.id;
  area.value = button.textContent;
  area.rows = 3;
  const save = document.createElement('button');
  save.type = 'button'; save.textContent = 'Save'; save.className = 'save';
  const cancel = document.createElement('button');
  cancel.type = 'button'; cancel.textContent = 'Cancel';
  box.append(label, area, save, cancel);
  row.append(box);
  area.focus();
  cancel.addEventListener('click', () => { box.remove(); row.querySelector('.edit').focus(); });
  save.addEventListener('click', async () => {
    const review = await send({ op: 'edit', id: row.dataset.id, text: area.value });
    if (!review) return;
    render(row, findSentence(review, row.dataset.id));
    box.remove();
    row.querySelector('.edit').focus();
  });
  area.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') cancel.click();
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) save.click();
  });
}

if (columns) {
  columns.addEventListener('click', async (ev) => {
    const target = ev.target.closest('button');
    if (!target) return;
    const row = target.closest('.sentence-row');
    if (target.classList.contains('sentence')) showEvidence(target);
    else if (target.classList.contains('edit') && row) startEdit(row);
    else if (target.classList.contains('toggle') && row) {
      const op = row.classList.contains('removed') ? 'restore' : 'remove';
      const review = await send({ op, id: row.dataset.id });
      if (review) render(row, findSentence(review, row.dataset.id));
    } else if (target.classList.contains('item-toggle')) {
      const li = target.closest('.item');
      const removed = li.classList.contains('removed');
      const review = await send({ op: removed ? 'restore-item' : 'remove-item', key: li.dataset.key });
      if (!review) return;
      const item = review.items.find((i) => i.key === li.dataset.key);
      li.classList.toggle('removed', item.removed);
      target.textContent = item.removed ? 'Keep' : 'Remove';
      target.setAttribute('aria-label', target.textContent + ' ' + item.display);
    } else if (target.id === 'sign') {
      target.disabled = true;
      say('Signing and writing to the chart…');
      const r = await fetch('/app/review/' + encodeURIComponent(job) + '/sign', {
        method: 'POST', headers: { 'X-CSRF-Token': csrf },
      });
      const body = await r.json().catch(() => ({}));
      if (!r.ok && !body.sections) { say('Not signed: ' + (body.message || r.status)); target.disabled = false; return; }
      window.location.reload();
    }
  });
  for (const form of document.querySelectorAll('.add-form')) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const input = form.querySelector('input');
      const review = await send({ op: 'add', section: form.dataset.section, text: input.value });
      if (review) window.location.reload();
    });
  }
}
