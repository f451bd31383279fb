// The lhama chat page: keeps the conversation in memory, sends it to /v1/chat/completions
// with stream: true and writes the answer as the server-sent events arrive.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { model: null, history: [], images: [], videos: [], audio: null, busy: false };

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("chave").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function showError(text) { $("erro").textContent = text || ""; }

async function loadModel() {
  try {
    const response = await fetch("/v1/models", { headers: headers() });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    state.model = body.data[0].id;
    $("modelo").textContent = "modelo: " + state.model;
  } catch (e) {
    $("modelo").textContent = "modelo indisponível";
    showError("Não foi possível listar os modelos: " + e.message);
  }
}

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function addImage(file) {
  if (file && file.type.startsWith("video/")) return addVideo(file);
  if (!file || !file.type.startsWith("image/")) { showError("Esse arquivo não é uma imagem nem um vídeo."); return; }
  state.images.push(await readAsDataUrl(file));
  renderAttachments();
}

// Videos go whole to the server (a video_url part); it samples the frames.
async function addVideo(file) {
  state.videos.push({ name: file.name, url: await readAsDataUrl(file) });
  renderAttachments();
}

async function addAudio(file) {
  const format = file.name.toLowerCase().endsWith(".mp3") || file.type === "audio/mpeg" ? "mp3" : "wav";
  const url = await readAsDataUrl(file);
  state.audio = { name: file.name, format, data: url.slice(url.indexOf(",") + 1) };
  renderAttachments();
}

function renderAttachments() {
  const box = $("anexos");
  box.replaceChildren();
  state.images.forEach((url, i) => {
    const item = document.createElement("span");
    item.className = "anexo";
    const img = document.createElement("img");
    img.src = url;
    img.alt = "imagem anexada " + (i + 1);
    item.append(img, removeButton(() => state.images.splice(i, 1)));
    box.append(item);
  });
  state.videos.forEach((video, i) => {
    const item = document.createElement("span");
    item.className = "anexo";
    item.append("🎬 " + video.name, removeButton(() => state.videos.splice(i, 1)));
    box.append(item);
  });
  if (state.audio) {
    const item = document.createElement("span");
    item.className = "anexo";
    item.append("🔊 " + state.audio.name, removeButton(() => { state.audio = null; }));
    box.append(item);
  }
}

function removeButton(onRemove) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "×";
  button.title = "Remover";
  button.onclick = () => { onRemove(); renderAttachments(); };
  return button;
}

function addBubble(role, text, images) {
  const bubble = document.createElement("div");
  bubble.className = "mensagem " + role;
  (images || []).forEach((url) => {
    const img = document.createElement("img");
    img.src = url;
    img.alt = "imagem enviada";
    bubble.append(img);
  });
  const body = document.createElement("span");
  body.className = "texto";
  body.textContent = text;
  bubble.append(body);
  $("conversa").append(bubble);
  bubble.scrollIntoView({ block: "end" });
  return bubble;
}

function userContent(text) {
  const parts = state.images.map((url) => ({ type: "image_url", image_url: { url } }));
  state.videos.forEach((video) => parts.push({ type: "video_url", video_url: { url: video.url } }));
  if (state.audio) parts.push({ type: "input_audio", input_audio: { data: state.audio.data, format: state.audio.format } });
  if (parts.length === 0) return text;
  parts.push({ type: "text", text });
  return parts;
}

// Parse "data: ..." lines of a server-sent-event stream; calls onEvent with each JSON payload.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        onEvent(JSON.parse(data));
      }
    }
  }
}

async function send(text) {
  const content = userContent(text);
  addBubble("usuario", text, state.images);
  state.history.push({ role: "user", content });
  state.images = [];
  state.videos = [];
  state.audio = null;
  renderAttachments();
  const bubble = addBubble("assistente escrevendo", "");
  const out = bubble.querySelector(".texto");
  const response = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: headers(),
    body: JSON.stringify({ model: state.model, messages: state.history, stream: true, stream_options: { include_usage: true } }),
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    state.history.pop();
    bubble.remove();
    throw new Error(body.error ? body.error.message : response.statusText);
  }
  let usage = null;
  await readEvents(response, (chunk) => {
    if (chunk.error) throw new Error(chunk.error.message);
    if (chunk.usage) usage = chunk.usage;
    const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
    if (delta && delta.content) { out.textContent += delta.content; bubble.scrollIntoView({ block: "end" }); }
  });
  bubble.classList.remove("escrevendo");
  state.history.push({ role: "assistant", content: out.textContent });
  if (usage) {
    const note = document.createElement("span");
    note.className = "nota";
    note.textContent = usage.completion_tokens + " tokens gerados";
    bubble.append(note);
  }
}

async function onSubmit(event) {
  event.preventDefault();
  const text = $("pergunta").value.trim();
  if (state.busy || (!text && state.images.length === 0 && state.videos.length === 0)) return;
  state.busy = true;
  $("enviar").disabled = true;
  showError("");
  $("pergunta").value = "";
  try {
    if (!state.model) await loadModel();
    await send(text || (state.videos.length ? "O que acontece no vídeo?" : "Descreva a imagem."));
  } catch (e) {
    showError("Erro: " + e.message);
  } finally {
    state.busy = false;
    $("enviar").disabled = false;
    $("pergunta").focus();
  }
}

function onPaste(event) {
  for (const item of event.clipboardData ? event.clipboardData.items : []) {
    if (item.kind === "file" && item.type.startsWith("image/")) {
      event.preventDefault();
      addImage(item.getAsFile());
    }
  }
}

$("formulario").addEventListener("submit", onSubmit);
$("pergunta").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("formulario").requestSubmit(); }
});
$("pergunta").addEventListener("paste", onPaste);
$("imagem").addEventListener("change", (e) => { if (e.target.files[0]) addImage(e.target.files[0]); e.target.value = ""; });
$("audio").addEventListener("change", (e) => { if (e.target.files[0]) addAudio(e.target.files[0]); e.target.value = ""; });
$("nova").addEventListener("click", () => { state.history = []; $("conversa").replaceChildren(); showError(""); });
$("chave").value = localStorage.getItem("lhama-chave") || "";
$("chave").addEventListener("change", () => { localStorage.setItem("lhama-chave", $("chave").value); loadModel(); });
loadModel();
