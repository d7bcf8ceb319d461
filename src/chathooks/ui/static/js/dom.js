// Building DOM nodes without HTML strings.
//
// Payload text (visitor messages, response bodies, URLs) comes from strangers, so
// nothing here ever assigns innerHTML: text always becomes a text node, and links
// are made only from http(s) URLs.

/** Create an element: h("a", {href: url, class: "x"}, "text", childNode). */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace everything inside `node` with `children`. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node;
}

/** The URL if it is a web link (http or https), else null: never a javascript: link. */
export function safeHttpUrl(text) {
  if (typeof text !== "string" || !text) return null;
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

/** A link that opens in a new tab for a web URL; plain text for anything else. */
export function externalLink(text, label = text) {
  const href = safeHttpUrl(text);
  if (!href) return document.createTextNode(String(text ?? ""));
  return h("a", { href, target: "_blank", rel: "noopener noreferrer" }, label);
}

/** Show or hide a message element (banners and field errors share this). */
export function say(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}
