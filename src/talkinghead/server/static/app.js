// talkinghead web page: submit a job, poll its progress, play and offer the video.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 500;
let currentJob = null;
let recorder = null;   // the MediaRecorder while recording
let recording = null;  // the last recording: a Blob
let camera = null;     // the camera's stream while its preview shows
let snapshot = null;   // a photo taken with the camera, used instead of a file: a Blob
let live = null;       // the live session: its WebSocket, microphone and frame count
const LIVE_RATE = 16000;  // Hz, the speech /v1/live takes
// language: of the speech (and the voice that speaks typed text)
const EXTRA_OPTIONS = ["emotion", "emotion_strength", "head_motion_scale", "gaze", "language",
                       "no_blink", "seed"];

async function loadOptions() {
  // Fill the crop-mode list and add controls for options the server knows (EXTRA_OPTIONS).
  const res = await fetch("/v1/options");
  const data = await res.json();
  for (const opt of data.options) {
    if (opt.name === "preprocess") fillSelect($("preprocess"), opt.choices, opt.default);
    if (EXTRA_OPTIONS.includes(opt.name)) addExtraOption(opt);
  }
}

function fillSelect(select, choices, chosen) {
  select.replaceChildren(...choices.map((c) => new Option(c, c, c === chosen, c === chosen)));
}

function addExtraOption(opt) {
  const label = document.createElement("label");
  const words = opt.name.replace(/_/g, " ");
  label.textContent = words[0].toUpperCase() + words.slice(1) + " ";
  let input;
  if (opt.type === "bool") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.value = "true";
    input.checked = Boolean(opt.default);
  } else if (opt.choices.length) {
    input = document.createElement("select");
    fillSelect(input, opt.choices, opt.default);
  } else {
    input = document.createElement("input");
    if (opt.type === "float" || opt.type === "int") {
      input.type = "number";
      input.step = opt.type === "float" ? "0.1" : "1";
    }
    input.value = opt.default ?? "";
  }
  input.id = input.name = opt.name;
  if (input.type === "checkbox") label.prepend(input); else label.appendChild(input);
  $("extra-options").appendChild(label);
}

function showPortrait(photo) {
  // A thumbnail of the chosen photo, so a wrong file is seen before it is uploaded.
  if ($("preview").src) URL.revokeObjectURL($("preview").src);
  $("preview").hidden = !photo;
  if (photo) $("preview").src = URL.createObjectURL(photo);
}

function choosePortraitFile() {
  snapshot = null;
  $("image").required = true;
  showPortrait($("image").files[0]);
}

async function toggleCamera() {
  if (camera) return closeCamera();
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: true });
  } catch (err) {
    return setStatus(`cannot use the camera: ${err.message}`, true);
  }
  $("camera").srcObject = camera;
  $("camera").hidden = $("shoot").hidden = false;
  $("camera-button").textContent = "Close camera";
}

function closeCamera() {
  camera.getTracks().forEach((track) => track.stop());
  camera = null;
  $("camera").srcObject = null;
  $("camera").hidden = $("shoot").hidden = true;
  $("camera-button").textContent = "Use camera";
}

function takePhoto() {
  // The camera's frame as it is (the preview is mirrored, the photo is not), as a JPEG.
  const video = $("camera");
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => {
    snapshot = blob;
    $("image").value = "";
    $("image").required = false;
    showPortrait(blob);
    closeCamera();
  }, "image/jpeg", 0.95);
}

function speechKind() {
  return document.querySelector("input[name=speech-kind]:checked").value;
}

function showSpeechKind() {
  const kind = speechKind();
  $("text-box").hidden = kind !== "text";
  $("audio-box").hidden = kind !== "audio";
  $("record-box").hidden = kind !== "record";
}

function offerDevices() {
  // Cameras and microphones are reachable only from secure pages (https, or this machine).
  $("camera-button").hidden = !navigator.mediaDevices;
  $("record-kind").hidden = !(navigator.mediaDevices && window.MediaRecorder);
  $("live").hidden = !(navigator.mediaDevices && window.AudioContext);
}

function toggleLive() {
  // Live: the portrait speaks as the microphone hears (WebSocket /v1/live, frames as JPEGs).
  if (live) return stopLive();
  const portrait = snapshot || $("image").files[0];
  if (!portrait) return setStatus("choose a portrait first", true);
  const options = new URLSearchParams();
  for (const [name, value] of new FormData($("job-form"))) {
    if (typeof value === "string" && !["speech-kind", "text"].includes(name)) options.append(name, value);
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/v1/live?${options}`);
  live = { ws, frames: 0, microphone: null };
  ws.onopen = () => ws.send(portrait);
  ws.onmessage = (event) => (typeof event.data === "string" ? liveMessage(JSON.parse(event.data))
                                                            : showLiveFrame(event.data));
  ws.onclose = () => endLive();
  $("live").textContent = "Stop";
  $("progress").hidden = true;
  setStatus("connecting…");
}

async function liveMessage(message) {
  if (message.type === "ready") {
    try {
      live.microphone = await openMicrophone((pcm) => live && live.ws.send(pcm));
      setStatus("live: speak");
    } catch (err) {
      setStatus(`cannot use the microphone: ${err.message}`, true);
      live.ws.close();
    }
  } else if (message.type === "done") {
    setStatus(`live session ended (${message.frames} frames)`);
  } else if (message.type === "error") {
    setStatus(message.error.message, true);
  }
}

async function openMicrophone(send) {
  // The microphone as 16 kHz 16-bit PCM chunks: each output sample the mean of the input
  // samples within its span (browsers record at 44.1 or 48 kHz).
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  const node = context.createScriptProcessor(1024, 1, 1);
  const step = context.sampleRate / LIVE_RATE;
  let span = 0, sum = 0, count = 0;
  node.onaudioprocess = (event) => {
    const out = [];
    for (const v of event.inputBuffer.getChannelData(0)) {
      sum += v;
      count += 1;
      span += 1;
      if (span >= step) {
        out.push(Math.max(-1, Math.min(1, sum / count)) * 32767);
        span -= step;
        sum = count = 0;
      }
    }
    send(Int16Array.from(out).buffer);
  };
  source.connect(node);
  node.connect(context.destination);
  return { stream, context };
}

function closeMicrophone() {
  if (!live || !live.microphone) return;
  live.microphone.stream.getTracks().forEach((track) => track.stop());
  live.microphone.context.close();
  live.microphone = null;
}

function showLiveFrame(jpeg) {
  const view = $("live-view");
  if (view.src) URL.revokeObjectURL(view.src);
  view.src = URL.createObjectURL(jpeg);
  $("live-box").hidden = false;
  live.frames += 1;
}

function stopLive() {
  closeMicrophone();
  if (live.ws.readyState === WebSocket.OPEN) live.ws.send(JSON.stringify({ type: "end" }));
  $("live").textContent = "Go live";
}

function endLive() {
  closeMicrophone();
  live = null;
  $("live").textContent = "Go live";
}

async function toggleRecording() {
  if (recorder) return recorder.stop();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    return setStatus(`cannot use the microphone: ${err.message}`, true);
  }
  const chunks = [];
  const started = Date.now();
  const clock = setInterval(() => {
    $("record-time").textContent = `${((Date.now() - started) / 1000).toFixed(1)} s`;
  }, 100);
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = () => {
    clearInterval(clock);
    stream.getTracks().forEach((track) => track.stop());
    recording = new Blob(chunks, { type: recorder.mimeType });
    recorder = null;
    if ($("playback").src) URL.revokeObjectURL($("playback").src);
    $("playback").src = URL.createObjectURL(recording);
    $("playback").hidden = false;
    $("record").textContent = "Record again";
  };
  recorder.start();
  $("record").textContent = "Stop";
}

function recordingName(type) {
  // The container the browser chose: webm (Chrome, Firefox), ogg, or mp4 (Safari).
  const kind = (type.split(";")[0].split("/")[1] || "webm").replace("mp4", "m4a");
  return `recording.${kind}`;
}

function buildForm() {
  const form = new FormData($("job-form"));
  const kind = speechKind();
  form.delete("speech-kind");
  if (snapshot) form.set("image", snapshot, "camera.jpg");
  if (kind !== "text") form.delete("text");
  if (kind !== "audio") form.delete("audio");
  if (kind === "record") {
    if (!recording || recorder) throw new Error("record some speech first (Record, then Stop)");
    form.set("audio", recording, recordingName(recording.type));
  }
  return form;
}

function setStatus(message, isError = false) {
  $("status-box").hidden = false;
  $("status").textContent = message;
  $("status").classList.toggle("error", isError);
}

async function submitJob(event) {
  event.preventDefault();
  $("result").hidden = true;
  $("progress").hidden = false;
  $("submit").disabled = true;
  setStatus("uploading…");
  try {
    const res = await fetch("/v1/videos", { method: "POST", body: buildForm() });
    const data = await res.json();
    if (!res.ok) throw new Error(data.error ? data.error.message : res.statusText);
    currentJob = data.id;
    $("cancel").hidden = false;
    poll(data.id);
  } catch (err) {
    setStatus(err.message, true);
    $("submit").disabled = false;
  }
}

async function poll(id) {
  if (id !== currentJob) return;
  const res = await fetch(`/v1/videos/${id}`);
  const job = await res.json();
  if (!res.ok) return finish(job.error ? job.error.message : res.statusText, true);
  $("progress").value = job.progress;
  if (job.status === "done") return showVideo(job);
  if (job.status === "failed") return finish(job.error, true);
  const where = job.status === "queued" ? `queued (position ${job.queue_position + 1})`
    : `rendering ${job.frames_done}/${job.frames_total} frames`;
  setStatus(where);
  setTimeout(() => poll(id), POLL_MS);
}

function showVideo(job) {
  finish("done");
  $("video").src = job.video_url;
  $("download").href = job.video_url + "?download=true";
  $("result").hidden = false;
}

function finish(message, isError = false) {
  setStatus(message, isError);
  $("submit").disabled = false;
  $("cancel").hidden = true;
}

async function cancelJob() {
  const id = currentJob;
  currentJob = null;
  if (id) await fetch(`/v1/videos/${id}`, { method: "DELETE" });
  finish("cancelled");
}

document.querySelectorAll("input[name=speech-kind]").forEach((r) => r.addEventListener("change", showSpeechKind));
$("image").addEventListener("change", choosePortraitFile);
$("camera-button").addEventListener("click", toggleCamera);
$("shoot").addEventListener("click", takePhoto);
$("record").addEventListener("click", toggleRecording);
$("live").addEventListener("click", toggleLive);
offerDevices();
$("job-form").addEventListener("submit", submitJob);
$("cancel").addEventListener("click", cancelJob);
loadOptions().catch((err) => setStatus(`cannot reach the server: ${err.message}`, true));
