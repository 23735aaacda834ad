// Lists every operation of /openapi.json: method, path, summary, description, parameters.
"use strict";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function renderOperation(path, method, op) {
  const section = el("section");
  section.appendChild(el("h3", `${method.toUpperCase()} ${path}`));
  if (op.summary) section.appendChild(el("p", op.summary));
  if (op.description) section.appendChild(el("p", op.description));
  const params = (op.parameters || []).map((p) => `${p.name} (${p.in})`);
  const body = op.requestBody && op.requestBody.content["multipart/form-data"];
  if (body) params.push(...Object.keys(body.schema.properties).map((n) => `${n} (form)`), "options (form)");
  if (params.length) section.appendChild(el("p", "parameters: " + params.join(", ")));
  section.appendChild(el("p", "responses: " + Object.keys(op.responses || {}).join(", ")));
  return section;
}

fetch("/openapi.json").then((r) => r.json()).then((spec) => {
  const root = document.getElementById("api");
  root.appendChild(el("p", `${spec.info.title} ${spec.info.version}: ${spec.info.description || ""}`));
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) root.appendChild(renderOperation(path, method, op));
  }
});
