// Renders /v1/openapi.json as plain HTML (no Swagger UI: that would need a CDN). textContent only.
"use strict";

function node(tag, text, cls) {
  const n = document.createElement(tag);
  if (text !== undefined) n.textContent = text;
  if (cls) n.className = cls;
  return n;
}

function fieldsOf(body) {
  const media = body && body.content && body.content["multipart/form-data"];
  if (!media) return null;
  const required = new Set(media.schema.required || []);
  const table = node("table", undefined, "fields");
  const tbody = node("tbody");
  for (const [name, schema] of Object.entries(media.schema.properties || {})) {
    const row = node("tr");
    row.append(node("th", name + (required.has(name) ? " (required)" : "")));
    const kind = schema.type === "array" ? "file, repeatable" : schema.format === "binary" ? "file" : "text";
    row.append(node("td", schema.description ? `${kind}: ${schema.description}` : kind));
    tbody.append(row);
  }
  table.append(tbody);
  return table;
}

function operation(path, method, op) {
  const section = node("section", undefined, "card");
  section.append(node("h2", `${method.toUpperCase()} ${path}`));
  section.append(node("p", op.summary || ""));
  if (op.security) section.append(node("p", "Needs Authorization: Bearer <token> when the server has a token.", "note"));
  for (const p of op.parameters || []) section.append(node("p", `?${p.name}: ${p.description || ""}`, "note"));
  const fields = fieldsOf(op.requestBody);
  if (fields) { section.append(node("h3", "Multipart fields")); section.append(fields); }
  section.append(node("h3", "Responses"));
  const list = node("ul");
  for (const [code, response] of Object.entries(op.responses || {})) list.append(node("li", `${code}: ${response.description}`));
  section.append(list);
  return section;
}

async function render() {
  const main = document.getElementById("api");
  try {
    const doc = await (await fetch("/v1/openapi.json")).json();
    main.replaceChildren(node("p", `${doc.info.title} ${doc.info.version} — ${doc.info.description}`));
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) main.append(operation(path, method, op));
    }
    main.append(node("p", 'Errors are JSON: {"error": "...", "detail": "..."}.', "note"));
  } catch (e) {
    main.replaceChildren(node("p", "Could not load /v1/openapi.json."));
  }
}

document.addEventListener("DOMContentLoaded", render);
