// fcsoft lab page: draws /api/state as a picture (SVG) and as tables, and redraws on every
// server-sent "state" event (/api/events), falling back to polling /api/state.
"use strict";

const params = new URLSearchParams(location.search);
const token = params.get("token");
const q = token ? "?token=" + encodeURIComponent(token) : "";
const PALETTE = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#dc2626",
                 "#4d7c0f", "#9333ea", "#0f766e"];
let zoneColors = {};
let last = null;

function esc(s) {
  return String(s === null || s === undefined ? "" : s)
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function size(n) {
  const units = [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 1024]];
  for (const [u, s] of units) if (n >= s && n % s === 0) return n / s + u;
  return n + "B";
}

function colorOf(zone) {
  if (!(zone in zoneColors)) {
    zoneColors[zone] = PALETTE[Object.keys(zoneColors).length % PALETTE.length];
  }
  return zoneColors[zone];
}

function badges(zones, x, y) {
  let out = "";
  for (const z of zones) {
    const w = 8 + 6.2 * z.length;
    out += `<g data-zone="${esc(z)}"><rect class="zone" x="${x}" y="${y - 10}" width="${w}"` +
      ` height="14" rx="7" fill="${colorOf(z)}"/><text class="ztext" x="${x + 4}"` +
      ` y="${y + 1}">${esc(z)}</text></g>`;
    x += w + 4;
  }
  return out;
}

function text(x, y, s, cls) {
  return `<text x="${x}" y="${y}"${cls ? ` class="${cls}"` : ""}>${esc(s)}</text>`;
}

function picture(st) {
  const sw = st.switch;
  const W = 1240, LX = 16, LW = 390, RX = 830, RW = 394, SX = 500, SW = 240;
  const hostLinks = sw.links.filter(l => l.kind !== "array");
  const arrayLinks = {};
  for (const l of sw.links.filter(l => l.kind === "array")) {
    for (const p of l.ports) arrayLinks[p.wwpn] = l;
  }
  const disabledHosts = sw.disabled.filter(d => d.kind === "host" && !d.logged_in);
  let svg = "", lines = "";
  // hosts (left)
  let y = 16;
  const anchors = [];
  for (const l of hostLinks) {
    const h = 30 + 18 * Math.max(1, l.ports.length);
    const cls = l.kind === "fcoe" ? "fcoe" : "host";
    svg += `<g data-link="${l.id}"><rect class="box ${cls}" x="${LX}" y="${y}" width="${LW}"` +
      ` height="${h}" rx="6"/>`;
    svg += text(LX + 8, y + 16, `link ${l.id} · ${l.kind} · ${l.peer}`, "muted");
    let py = y + 34;
    for (const p of l.ports) {
      const indent = p.login === "FDISC" ? 12 : 0;
      svg += `<g data-wwpn="${esc(p.wwpn)}">` +
        text(LX + 8 + indent, py, `${p.login === "FDISC" ? "↳ " : ""}${p.wwpn}`, "mono") +
        text(LX + 218, py, p.fcid, "mono muted") +
        badges(p.zones, LX + 270, py) + "</g>";
      py += 18;
    }
    svg += "</g>";
    anchors.push([LX + LW, y + h / 2, l.state === "online"]);
    y += h + 12;
  }
  for (const d of disabledHosts) {
    svg += `<g data-wwpn="${esc(d.wwpn)}" data-disabled="1"><rect class="box disabled"` +
      ` x="${LX}" y="${y}" width="${LW}" height="30" rx="6"/>` +
      text(LX + 8, y + 19, `${d.wwpn} · disabled`, "mono muted") + "</g>";
    anchors.push([LX + LW, y + 15, false]);
    y += 42;
  }
  const leftBottom = y;
  // arrays (right)
  y = 16;
  const rightAnchors = [];
  for (const a of st.arrays) {
    const top = y;
    let body = "";
    let ay = y + 36;
    for (const p of a.ports) {
      const online = p.state === "online";
      body += `<g data-wwpn="${esc(p.wwpn)}" data-state="${esc(p.state)}">` +
        text(RX + 10, ay, `port ${p.relative_port} ${p.wwpn}`, "mono") +
        text(RX + 230, ay, `${p.fcid || "------"} ${p.state}`, online ? "mono" : "mono err") +
        text(RX + 10, ay + 14, `TPG ${p.port_group} ${p.alua_state} · ${p.sessions} sess.`,
             "muted") + "</g>";
      const link = arrayLinks[p.wwpn];
      if (link && link.ports[0]) body += badges(link.ports[0].zones, RX + 292, ay + 14);
      rightAnchors.push([RX, ay - 4, online]);
      ay += 34;
    }
    for (const u of a.luns) {
      const maps = u.maps.map(m => `${m.host}:${m.lun}`).join(", ") || "unmapped";
      body += `<g data-lu="${esc(u.name)}">` +
        text(RX + 10, ay, `LU ${u.name}`, "") +
        text(RX + 90, ay, `${size(u.size)} · ${u.block_size} · ${u.backing}`, "muted") +
        text(RX + 10, ay + 14, `maps ${maps}`, "mono muted");
      let extra = ay + 14;
      if (u.reservation) {
        extra += 14;
        body += `<text class="res" x="${RX + 10}" y="${extra}" data-reservation="${esc(u.name)}">` +
          `${esc(u.reservation.type)} held by ${esc(u.reservation.holders.join(", ") ||
          "all registrants")}</text>`;
      }
      if (u.error || u.latency_ms) {
        extra += 14;
        const bits = [];
        if (u.error) bits.push(`error ${u.error.sense || u.error.status}`);
        if (u.latency_ms) bits.push(`latency ${u.latency_ms} ms`);
        body += text(RX + 10, extra, bits.join(" · "), "err");
      }
      body += "</g>";
      ay = extra + 20;
    }
    const h = ay - top - 6;
    svg += `<g data-array="${esc(a.name)}"><rect class="box array" x="${RX}" y="${top}"` +
      ` width="${RW}" height="${h}" rx="6"/>` +
      text(RX + 10, top + 18, `array ${a.name} · ${a.vendor} ${a.product}`, "") + body + "</g>";
    y = top + h + 14;
  }
  const H = Math.max(leftBottom, y, 140) + 10;
  // the switch
  const f = sw.fabric;
  const sy = 16, sh = H - 42;
  svg = `<rect class="switch" x="${SX}" y="${sy}" width="${SW}" height="${sh}" rx="8"/>` +
    text(SX + 12, sy + 22, `switch ${f.name}`, "") +
    text(SX + 12, sy + 40, `domain ${f.domain_id} · ${f.wwn}`, "mono muted") +
    text(SX + 12, sy + 58, `${f.links} links · ${f.ports} N_Ports`, "muted") +
    text(SX + 12, sy + 76, `zones ${f.zones} · default ${f.default_zone}`, "muted") +
    text(SX + 12, sy + 94, `faults ${st.faults.rules.length} rule(s) · ` +
         `${Object.values(st.faults.injected).reduce((a, b) => a + b, 0)} injected`, "muted") +
    svg;
  for (const [x, yy, up] of anchors) {
    lines += `<path class="link${up ? "" : " down"}" d="M${x},${yy} L${SX},${yy}"/>`;
  }
  for (const [x, yy, up] of rightAnchors) {
    lines += `<path class="link${up ? "" : " down"}" d="M${SX + SW},${yy} L${x},${yy}"/>`;
  }
  const el = document.getElementById("fabric");
  el.setAttribute("viewBox", `0 0 ${W} ${H}`);
  el.setAttribute("height", H);
  el.innerHTML = lines + svg;
}

function table(title, head, rows, attr) {
  let h = `<h2>${esc(title)}</h2><table${attr ? " " + attr : ""}><tr>` +
    head.map(c => `<th>${esc(c)}</th>`).join("") + "</tr>";
  for (const r of rows) h += "<tr>" + r.map(c => `<td class="mono">${esc(c)}</td>`).join("") + "</tr>";
  if (!rows.length) h += `<tr><td colspan="${head.length}">none</td></tr>`;
  return h + "</table>";
}

function tables(st) {
  const sw = st.switch;
  const ports = [];
  for (const l of sw.links) {
    for (const p of l.ports) {
      ports.push([l.id, l.kind, l.peer, p.fcid, p.wwpn, p.login, p.role, p.zones.join(", ")]);
    }
  }
  let h = table("N_Ports", ["link", "kind", "peer", "fcid", "wwpn", "login", "role", "zones"],
                ports, 'id="ports-table"');
  h += table("Zones (default " + st.zones.default_zone + ")", ["zone", "members"],
             st.zones.zones.map(z => [z.name, z.members.map(m => m.wwpn +
               (m.online ? "" : " (offline)")).join(", ")]), 'id="zones-table"');
  const aports = [], lus = [];
  for (const a of st.arrays) {
    for (const p of a.ports) {
      aports.push([a.name, p.relative_port, p.wwpn, p.fcid, p.state, p.port_group, p.alua_state,
                   p.sessions]);
    }
    for (const u of a.luns) {
      lus.push([a.name, u.name, size(u.size), u.block_size, u.backing,
                u.maps.map(m => `${m.host}:${m.lun}`).join(", "),
                u.reservation ? `${u.reservation.type} ${u.reservation.holders.join(", ")}` : "",
                u.error ? (u.error.sense || u.error.status) : "", u.latency_ms || ""]);
    }
  }
  h += table("Array ports", ["array", "port", "wwpn", "fcid", "state", "tpg", "alua",
                             "sessions"], aports);
  h += table("LUs", ["array", "lu", "size", "block", "backing", "maps", "reservation", "error",
                     "latency ms"], lus, 'id="lus-table"');
  h += table("Disabled ports", ["wwpn", "kind", "logged in"],
             sw.disabled.map(d => [d.wwpn, d.kind, d.logged_in]));
  h += table("Faults", ["id", "action", "direction", "count left", "probability", "hits"],
             st.faults.rules.map(r => [r.id, r.action + (r.delay_ms ? ` ${r.delay_ms}ms` : ""),
                                       r.direction, r.count_left, r.probability, r.hits]));
  document.getElementById("tables").innerHTML = h;
}

function render(st) {
  last = st;
  const f = st.switch.fabric;
  document.getElementById("fabric-name").textContent = f.name;
  document.getElementById("summary").textContent =
    `domain ${f.domain_id} · ${f.address} · ${f.ports} N_Ports · log level ${st.log_level}`;
  picture(st);
  tables(st);
}

function live(on) {
  const el = document.getElementById("live");
  el.textContent = on ? "live" : "reconnecting...";
  el.className = on ? "on" : "";
}

async function poll() {
  try {
    const r = await fetch("api/state" + q, {cache: "no-store"});
    if (r.ok) { render(await r.json()); live(true); }
  } catch (e) { live(false); }
}

function connect() {
  if (!window.EventSource) { setInterval(poll, 1000); poll(); return; }
  const es = new EventSource("api/events" + q);
  es.addEventListener("state", ev => { render(JSON.parse(ev.data)); live(true); });
  es.onerror = () => live(false);
}

for (const [id, show] of [["show-picture", "picture"], ["show-tables", "tables"]]) {
  document.getElementById(id).addEventListener("click", () => {
    for (const s of ["picture", "tables"]) document.getElementById(s).hidden = s !== show;
    document.getElementById("show-picture").classList.toggle("active", show === "picture");
    document.getElementById("show-tables").classList.toggle("active", show === "tables");
  });
}
connect();
