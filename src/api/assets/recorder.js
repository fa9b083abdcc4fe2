// In-browser recorder for the encounter page: captures the microphone, keeps 16 kHz mono
// 16-bit PCM, and hands a WAV Blob to window.fhirscribeUpload (defined by app.js).
// Served concatenated after app.js, so everything lives in this IIFE (app.js already owns
// top-level names such as `upload`), and it does nothing when #recorder is not on the page.
//
// Capture node: ScriptProcessorNode. It is deprecated, but it works in every browser, and
// an AudioWorklet needs a same-origin module URL that the asset routes do not serve (a blob:
// module would be blocked by the CSP's script-src 'self').
// Resampler: when the context cannot run at 16 kHz (Safari ignoring the option, Firefox
// refusing to connect a mic at another rate), a Blackman-windowed sinc low-pass (cut-off
// 7 kHz) is evaluated at fractional input positions, so any input rate converts cleanly.
(function () {
  'use strict';
  const RATE = 16000;
  const el = (id) => document.getElementById(id);
  const root = el('recorder');
  const startBtn = el('rec-start'), pauseBtn = el('rec-pause'), stopBtn = el('rec-stop');
  const level = el('rec-level'), time = el('rec-time'), status = el('rec-status');
  if (!root || !startBtn || !pauseBtn || !stopBtn || !status) return;
  const AC = window.AudioContext || window.webkitAudioContext;

  let state = 'idle';   // idle → starting → recording ⇄ paused → uploading → idle
  let stream = null, ctx = null, nodes = [], resampler = null, ticker = null;
  let chunks = [], samples = 0, loudest = 0;   // loudest: max block RMS since the last tick
  let saveUrl = null;   // object URL of the last recording, offered as a download

  const say = (msg) => { status.textContent = msg; };
  // A download link keeps the audio when it could not be (or may not have been) uploaded.
  function offerSave(blob, msg, label) {
    if (saveUrl) URL.revokeObjectURL(saveUrl);
    saveUrl = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = saveUrl; a.download = 'encounter.wav'; a.textContent = label;
    say(msg); status.append(a);
  }
  const fmt = (secs) => {
    const s = Math.floor(secs);
    return String(Math.floor(s / 60)).padStart(2, '0') + ':' + String(s % 60).padStart(2, '0');
  };

  function setState(s) {
    state = s;
    const live = s === 'recording' || s === 'paused';
    startBtn.disabled = s !== 'idle';
    pauseBtn.disabled = stopBtn.disabled = !live;
    pauseBtn.textContent = s === 'paused' ? 'Resume' : 'Pause';
    pauseBtn.setAttribute('aria-pressed', String(s === 'paused'));
  }

  // Streaming band-limited resampler from inRate to RATE. Keeps L samples of history either
  // side of each output position; the kernel is tabulated at 1/OS-sample resolution and
  // linearly interpolated, which keeps the per-sample cost to ~2L multiply-adds.
  function makeResampler(inRate) {
    const step = inRate / RATE, OS = 128;
    const fc = Math.min(7000, 0.45 * inRate) / inRate;   // cycles per input sample
    const L = Math.ceil(24 * Math.max(step, 1));
    const tab = new Float32Array(L * OS + 2);
    for (let j = 0; j < tab.length; j++) {
      const x = j / OS;
      if (x >= L) continue;
      const u = 2 * fc * x;
      const sinc = u === 0 ? 1 : Math.sin(Math.PI * u) / (Math.PI * u);
      const w = 0.42 + 0.5 * Math.cos(Math.PI * x / L) + 0.08 * Math.cos(2 * Math.PI * x / L);
      tab[j] = 2 * fc * sinc * w;
    }
    let hist = new Float32Array(L), t = L;   // t: next output position within hist
    function process(input) {
      const buf = new Float32Array(hist.length + input.length);
      buf.set(hist); buf.set(input, hist.length);
      const out = new Float32Array(Math.ceil(input.length / step) + 2);
      let n = 0;
      while (t + L < buf.length && n < out.length) {
        let acc = 0;
        for (let i = Math.ceil(t - L), end = Math.floor(t + L); i <= end; i++) {
          const d = Math.abs(t - i) * OS, j = d | 0;
          acc += buf[i] * (tab[j] + (tab[j + 1] - tab[j]) * (d - j));
        }
        out[n++] = acc;
        t += step;
      }
      const keep = Math.max(0, Math.floor(t) - L);   // history still needed by the next output
      hist = buf.slice(keep); t -= keep;
      return out.subarray(0, n);
    }
    // Padding with L zeros lets every position up to the real end be computed.
    return { process, flush: () => process(new Float32Array(L)) };
  }

  function store(f32) {
    const pcm = new Int16Array(f32.length);
    for (let i = 0; i < f32.length; i++) {
      const s = Math.max(-1, Math.min(1, f32[i]));
      pcm[i] = s < 0 ? s * 0x8000 : s * 0x7fff;
    }
    if (pcm.length) { chunks.push(pcm); samples += pcm.length; }
  }

  function onAudio(ev) {
    if (state !== 'recording') return;   // paused: drop the audio, the timer stands still
    const x = ev.inputBuffer.getChannelData(0);
    let sum = 0;
    for (let i = 0; i < x.length; i++) sum += x[i] * x[i];
    loudest = Math.max(loudest, Math.sqrt(sum / x.length));
    store(resampler ? resampler.process(x) : x);
  }

  // Prefer a 16 kHz context (the browser resamples); otherwise fall back to the device rate.
  function openContext() {
    let src = null;
    if (!window.fhirscribeForceResample) {
      try {
        ctx = new AC({ sampleRate: RATE });
        src = ctx.createMediaStreamSource(stream);
      } catch (e) {
        if (ctx) ctx.close().catch(() => {});
        ctx = null; src = null;
      }
    }
    if (!src) { ctx = new AC(); src = ctx.createMediaStreamSource(stream); }
    resampler = ctx.sampleRate === RATE ? null : makeResampler(ctx.sampleRate);   // null: 16 kHz already
    // ~64 ms (16 kHz) or ~43 ms (48 kHz) blocks: small enough for a 10 Hz meter.
    const proc = ctx.createScriptProcessor(ctx.sampleRate <= 24000 ? 1024 : 2048, 1, 1);
    proc.onaudioprocess = onAudio;
    // The processor must reach the destination to run; a zero gain keeps the mic silent.
    const mute = ctx.createGain();
    mute.gain.value = 0;
    src.connect(proc); proc.connect(mute); mute.connect(ctx.destination);
    nodes = [src, proc, mute];
    if (ctx.state === 'suspended') ctx.resume().catch(() => {});
  }

  function teardown() {
    clearInterval(ticker); ticker = null;
    for (const n of nodes) {
      if ('onaudioprocess' in n) n.onaudioprocess = null;
      try { n.disconnect(); } catch (e) { /* already disconnected */ }
    }
    nodes = [];
    if (stream) for (const tr of stream.getTracks()) tr.stop();
    if (ctx) ctx.close().catch(() => {});
    stream = ctx = null;
    if (level) level.value = 0;
  }

  function tick() {
    if (time) time.textContent = fmt(samples / RATE);
    // RMS in dB, -60..0 dBFS mapped onto 0..1. Peak since the last tick with a 30 dB/s fall, so
    // short sounds between ticks still show.
    const db = loudest > 0 ? Math.max(0, Math.min(1, (20 * Math.log10(loudest) + 60) / 60)) : 0;
    if (level) level.value = state === 'recording' ? Math.max(db, level.value - 0.05) : 0;
    loudest = 0;
  }

  function micError(e) {
    switch (e && e.name) {
      case 'NotAllowedError': case 'SecurityError':
        return 'Microphone access was refused. Allow it in the browser to record here, or upload a file.';
      case 'NotFoundError': case 'OverconstrainedError': return 'No microphone was found.';
      case 'NotReadableError': return 'The microphone is in use by another program or could not be opened.';
      default: return 'The microphone could not be started: ' + ((e && e.message) || e);
    }
  }

  async function begin() {
    if (state !== 'idle') return;
    if (!window.isSecureContext) {
      say('Recording needs a secure (HTTPS) connection to this site; upload a file instead.'); return;
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !AC) {
      say('This browser cannot record audio; upload a file instead.'); return;
    }
    if (saveUrl) { URL.revokeObjectURL(saveUrl); saveUrl = null; }
    setState('starting');
    say('Waiting for the microphone…');
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: {
        channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: true } });
      openContext();
    } catch (e) {
      const msg = stream ? 'Audio capture could not start: ' + (e.message || e) : micError(e);
      teardown(); setState('idle'); say(msg);
      return;
    }
    // A mic unplugged or revoked mid-encounter ends the recording rather than losing it.
    for (const tr of stream.getAudioTracks()) tr.addEventListener('ended', () => finish());
    chunks = []; samples = 0; loudest = 0;
    tick();
    ticker = setInterval(tick, 100);
    setState('recording');
    say('Recording…');
  }

  function togglePause() {
    if (state === 'recording') { setState('paused'); say('Paused.'); }
    else if (state === 'paused') { setState('recording'); say('Recording…'); }
    tick();
  }

  function wav(parts, n) {
    const h = new DataView(new ArrayBuffer(44));
    const str = (o, s) => { for (let i = 0; i < s.length; i++) h.setUint8(o + i, s.charCodeAt(i)); };
    str(0, 'RIFF'); h.setUint32(4, 36 + n * 2, true); str(8, 'WAVE');
    str(12, 'fmt '); h.setUint32(16, 16, true); h.setUint16(20, 1, true); h.setUint16(22, 1, true);
    h.setUint32(24, RATE, true); h.setUint32(28, RATE * 2, true); h.setUint16(32, 2, true);
    h.setUint16(34, 16, true); str(36, 'data'); h.setUint32(40, n * 2, true);
    // Int16Array bytes are platform-endian; swap on the (rare) big-endian host.
    const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    const body = le ? parts : parts.map((p) => {
      const d = new DataView(new ArrayBuffer(p.length * 2));
      p.forEach((v, i) => d.setInt16(i * 2, v, true));
      return d.buffer;
    });
    return new Blob([h.buffer].concat(body), { type: 'audio/wav' });
  }

  async function finish() {
    if (state !== 'recording' && state !== 'paused') return;
    setState('uploading');
    teardown();
    if (resampler) store(resampler.flush());
    tick();
    if (samples < RATE) {
      chunks = []; setState('idle'); say('The recording is shorter than one second; nothing was sent.'); return;
    }
    const blob = wav(chunks, samples), length = fmt(samples / RATE);
    chunks = [];   // the Blob holds the audio now
    if (typeof window.fhirscribeUpload !== 'function') {
      setState('idle');
      offerSave(blob, 'The recording (' + length + ') could not be sent: uploading is unavailable on this page. ',
        'Save it as a file.');
      return;
    }
    say('Recorded ' + length + '; sending it…');
    try {
      await window.fhirscribeUpload(blob, false);   // shows its own progress; may navigate away
      offerSave(blob, '', 'Save a copy of this recording (' + length + ').');
    } catch (e) {
      offerSave(blob, 'The recording could not be sent: ' + ((e && e.message) || e) + '. ', 'Save it as a file.');
    }
    setState('idle');
  }

  // Leaving the page mid-recording would lose it: ask first.
  window.addEventListener('beforeunload', (ev) => {
    if (state === 'recording' || state === 'paused') { ev.preventDefault(); ev.returnValue = ''; }
  });
  startBtn.addEventListener('click', begin);
  pauseBtn.addEventListener('click', togglePause);
  stopBtn.addEventListener('click', finish);
  setState('idle');
})();
