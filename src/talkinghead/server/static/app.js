// talkinghead web page: submit a job, poll its progress, play and offer the video.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 500;
let currentJob = null;
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

function showPortrait() {
  // A thumbnail of the chosen photo, so a wrong file is seen before it is uploaded.
  const file = $("image").files[0];
  if ($("preview").src) URL.revokeObjectURL($("preview").src);
  $("preview").hidden = !file;
  if (file) $("preview").src = URL.createObjectURL(file);
}

function speechKind() {
  return document.querySelector("input[name=speech-kind]:checked").value;
}

function showSpeechKind() {
  const text = speechKind() === "text";
  $("text-box").hidden = !text;
  $("audio-box").hidden = text;
}

function buildForm() {
  const form = new FormData($("job-form"));
  form.delete("speech-kind");
  if (speechKind() === "text") form.delete("audio"); else form.delete("text");
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
$("image").addEventListener("change", showPortrait);
$("job-form").addEventListener("submit", submitJob);
$("cancel").addEventListener("click", cancelJob);
loadOptions().catch((err) => setStatus(`cannot reach the server: ${err.message}`, true));
