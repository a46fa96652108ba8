// runner console: streams a scan's JSON lines into the results table, cancels it, and
// confirms runs started from the jobs page. Message data is only ever set as text.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);

  function cell(row, text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function addRow(body, topic, m, params) {
    const row = document.createElement("tr");
    row.dataset.partition = m.partition;
    row.dataset.offset = m.offset;
    cell(row, String(m.partition));
    const link = document.createElement("a");
    const extra = new URLSearchParams();
    for (const k of ["raw", "tz"]) if (params.get(k)) extra.set(k, params.get(k));
    link.href = "/message/" + encodeURIComponent(topic) + "/" + m.partition + "/" + m.offset +
      (extra.toString() ? "?" + extra : "");
    link.textContent = String(m.offset);
    cell(row, "").appendChild(link);
    cell(row, (m.time || "") + (m.local_time ? "\n" + m.local_time : ""), "time");
    cell(row, m.key === null || m.key === undefined ? "null" : m.key, "key");
    cell(row, (m.headers || []).map((h) => h[0] + ": " + h[1]).join("\n"), "headers");
    const value = cell(row, "", "value");
    const pre = document.createElement("pre");
    if (m.value !== undefined) {
      pre.textContent = JSON.stringify(m.value);
    } else {
      pre.textContent = m.raw === undefined ? "null" : m.raw;
      pre.className = "raw";
    }
    value.appendChild(pre);
    const meta = [];
    if (m.type) meta.push("type " + m.type);
    if (m.schema_id !== undefined) meta.push("schema id " + m.schema_id);
    if (meta.length) {
      const small = document.createElement("small");
      small.textContent = meta.join(", ");
      value.appendChild(small);
    }
    if (m.error) {
      const err = document.createElement("div");
      err.className = "error";
      err.textContent = "not decoded: " + m.error;
      value.appendChild(err);
    }
    body.appendChild(row);
  }

  async function scan(table) {
    const status = $("status");
    const cancel = $("cancel");
    const body = table.querySelector("tbody");
    const params = new URLSearchParams(location.search);
    const control = new AbortController();
    cancel.disabled = false;
    cancel.onclick = () => control.abort();
    const say = (text, cls) => { status.textContent = text; status.className = cls || ""; };
    let rows = 0;
    try {
      const response = await fetch(table.dataset.api, { signal: control.signal });
      if (!response.ok) {
        const problem = await response.json().catch(() => ({ error: response.statusText }));
        say(problem.error, "error");
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 1);
          if (!line) continue;
          const event = JSON.parse(line);
          if (event.progress) {
            const p = event.progress;
            say("Scanning: " + p.scanned + " records read, " + p.matched + " matched, " +
              (p.elapsed_ms / 1000).toFixed(1) + " s");
          } else if (event.message) {
            addRow(body, table.dataset.topic, event.message, params);
            rows += 1;
          } else if (event.done) {
            const d = event.done;
            say("Done: " + d.returned + " shown, " + d.matched + " matched of " + d.scanned +
              " read in " + (d.elapsed_ms / 1000).toFixed(1) + " s (stopped: " + d.stopped.replace("_", " ") + ")", "done");
            table.dataset.state = "done";
          } else if (event.error) {
            say(event.error, "error");
            table.dataset.state = "error";
          }
        }
      }
    } catch (e) {
      if (control.signal.aborted) {
        say("Cancelled after " + rows + " rows.", "error");
        table.dataset.state = "cancelled";
      } else {
        say("The scan failed: " + e, "error");
      }
    } finally {
      cancel.disabled = true;
    }
  }

  function triggers() {
    for (const button of document.querySelectorAll("button[data-run]")) {
      button.addEventListener("click", async () => {
        const job = button.dataset.run;
        if (!confirm("Start a run of " + job + " now?")) return;
        button.disabled = true;
        const response = await fetch("/api/jobs/" + encodeURIComponent(job) + "/run", {
          method: "POST",
          headers: { "X-Runner-Confirm": job },
        });
        const answer = await response.json().catch(() => ({}));
        button.textContent = response.ok ? "Started" : (answer.error || "Failed");
      });
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const table = $("results");
    if (table) scan(table);
    triggers();
  });
})();
