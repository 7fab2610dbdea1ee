// Rating mode of the pytest-phyjudge HTML report: a person scores each clip 1-5 per axis with
// the keyboard, the ratings are kept in localStorage and exported as a scores.json that
// `phyjudge agree` reads. Plain JavaScript, runs from file://; text from the report only ever
// goes in through textContent.
(function () {
  "use strict";
  var block = document.getElementById("rating-data");
  var toggle = document.getElementById("rate-toggle");
  if (!block || !toggle) { return; }
  var data = JSON.parse(block.textContent);
  var panel = document.getElementById("rate-panel");
  var progress = document.getElementById("rate-progress");
  var nameInput = document.getElementById("rate-name");
  var storeNote = document.getElementById("rate-store");
  var bar = document.getElementById("rate-bar");
  var KEY = "phyjudge-ratings:" + data.identity;
  var LOW = data.scale[0], HIGH = data.scale[1];
  // Maps without a prototype: a name such as "constructor" is never found in them.
  var general = Object.create(null);
  data.general.forEach(function (metric) { general[metric] = true; });
  var about = Object.create(null);
  Object.keys(data.about || {}).forEach(function (axis) { about[axis] = data.about[axis]; });

  var state = load();  // {rater: "", scores: {anchor: {axis: score}}}
  var slots = [];      // one per (card, axis), in the page's order; built on first entry
  var current = 0;

  function load() {
    try {
      var saved = JSON.parse(window.localStorage.getItem(KEY) || "null");
      if (saved && typeof saved.scores === "object" && saved.scores !== null) {
        return {rater: typeof saved.rater === "string" ? saved.rater : "", scores: saved.scores};
      }
    } catch (e) { /* no storage here, or bytes of no rating: start afresh */ }
    return {rater: "", scores: {}};
  }

  function save() {
    try {
      window.localStorage.setItem(KEY, JSON.stringify(state));
      storeNote.textContent = "";
    } catch (e) {
      storeNote.textContent =
        "This browser keeps nothing for this page: export before you close it.";
    }
  }

  function scoreOf(anchor, axis) {
    var scores = state.scores[anchor];
    var value = scores ? scores[axis] : null;
    var whole = typeof value === "number" && value % 1 === 0;
    return whole && value >= LOW && value <= HIGH ? value : null;
  }

  function paint(slot) {
    var value = scoreOf(slot.anchor, slot.axis);
    slot.row.classList.toggle("rated", value !== null);
    Array.prototype.forEach.call(slot.row.querySelectorAll("button"), function (button) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.value) === value));
    });
  }

  function count() {
    var rated = 0, cards = {}, done = 0, total = 0;
    slots.forEach(function (slot) {
      var has = scoreOf(slot.anchor, slot.axis) !== null;
      rated += has ? 1 : 0;
      if (!(slot.anchor in cards)) { cards[slot.anchor] = true; total += 1; }
      if (!has) { cards[slot.anchor] = false; }
    });
    Object.keys(cards).forEach(function (anchor) { done += cards[anchor] ? 1 : 0; });
    progress.textContent = rated + " of " + slots.length + " rated (" + done + " of " + total +
      " clips done)";
  }

  function build() {
    data.cases.forEach(function (entry) {
      var card = document.getElementById(entry.anchor);
      if (!card || !entry.axes.length) { return; }
      var box = document.createElement("div");
      box.className = "rate-card";
      var where = card.querySelector(".verdicts") || card;
      var caption = where.querySelector(".caption");
      where.insertBefore(box, caption ? caption.nextSibling : where.firstChild);
      entry.axes.forEach(function (axis) {
        var row = document.createElement("div");
        row.className = "rate-axis";
        row.dataset.axis = axis;
        var name = document.createElement("span");
        name.className = "rate-axis-name";
        name.textContent = axis;
        if (typeof about[axis] === "string") {
          var hint = document.createElement("small");
          hint.className = "rate-axis-about";
          hint.textContent = about[axis];
          name.appendChild(hint);
        }
        row.appendChild(name);
        for (var value = LOW; value <= HIGH; value += 1) {
          var button = document.createElement("button");
          button.type = "button";
          button.tabIndex = -1;
          button.textContent = String(value);
          button.dataset.value = String(value);
          row.appendChild(button);
        }
        var slot = {card: card, anchor: entry.anchor, axis: axis, row: row};
        row.addEventListener("click", function (event) {
          current = slots.indexOf(slot);
          var chosen = event.target.dataset ? event.target.dataset.value : undefined;
          if (chosen) { rate(Number(chosen), false); } else { show(false); }
        });
        slots.push(slot);
        box.appendChild(row);
        paint(slot);
      });
    });
  }

  function reveal(element) {
    var top = element.getBoundingClientRect().top;
    var covered = bar.getBoundingClientRect().height + 8;
    if (top < covered || element.getBoundingClientRect().bottom > window.innerHeight) {
      window.scrollBy(0, top - covered);
    }
  }

  function show(scroll) {
    var marked = document.querySelectorAll(".rate-axis.current, .case.rate-current");
    Array.prototype.forEach.call(marked, function (element) {
      element.classList.remove("current", "rate-current");
    });
    var slot = slots[current];
    if (!slot) { return; }
    slot.row.classList.add("current");
    slot.card.classList.add("rate-current");
    if (scroll) { reveal(slot.card); }
    reveal(slot.row);
  }

  function move(step) {
    var next = Math.max(0, Math.min(slots.length - 1, current + step));
    var changed = slots[next] && slots[current] && slots[next].card !== slots[current].card;
    current = next;
    show(changed);
  }

  function moveCard(step) {
    var card = slots[current].card, at = current;
    while (slots[at + step] && slots[at + step].card === card) { at += step; }
    if (!slots[at + step]) { return; }
    at += step;
    card = slots[at].card;
    while (step < 0 && slots[at - 1] && slots[at - 1].card === card) { at -= 1; }
    current = at;
    show(true);
  }

  function rate(value, advance) {
    var slot = slots[current];
    if (!slot) { return; }
    var scores = state.scores[slot.anchor] || {};
    if (value === null) { delete scores[slot.axis]; } else { scores[slot.axis] = value; }
    state.scores[slot.anchor] = scores;
    save();
    paint(slot);
    count();
    if (advance && current < slots.length - 1) { move(1); } else { show(false); }
  }

  function playPause() {
    var video = slots[current] && slots[current].card.querySelector("video");
    if (!video) { return; }
    if (video.paused) {
      var playing = video.play();
      if (playing && playing.catch) { playing.catch(function () { /* the clip cannot play */ }); }
    } else {
      video.pause();
    }
  }

  function rater() {
    var name = (state.rater || "").replace(/\s+/g, " ").trim().slice(0, 60);
    return name || "rater";
  }

  function exportRatings() {
    var results = [];
    data.cases.forEach(function (entry) {
      var row = {video: entry.video}, laws = {}, rated = false;
      ["suite", "prompt", "generator"].forEach(function (key) {
        if (entry[key] !== null && entry[key] !== undefined) { row[key] = entry[key]; }
      });
      entry.axes.forEach(function (axis) {
        var value = scoreOf(entry.anchor, axis);
        if (value === null) { return; }  // unrated: absent, never a zero
        rated = true;
        if (general[axis]) {
          row[axis] = value;
        } else {
          laws[axis] = {score: value, status: "scored"};
        }
      });
      if (Object.keys(laws).length) { row.physical = {laws: laws}; }
      if (rated) { results.push(row); }
    });
    if (!results.length) {
      storeNote.textContent = "Nothing is rated yet: rate a clip before exporting.";
      return;
    }
    var document_ = {
      meta: {
        // A person's ratings, never the judge's: agree and compare name them as such.
        judge: {kind: data.kind, adapter: "human:" + rater()},
        rater: rater(),
        tool: "pytest-phyjudge HTML report, rating mode",
        created: new Date().toISOString(),
        report: data.identity,
        scale: data.scale
      },
      num_videos: results.length,
      general_dimensions: data.general,
      results: results,
      format: data.format,
      version: data.version
    };
    var blob = new Blob([JSON.stringify(document_, null, 2) + "\n"], {type: "application/json"});
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "ratings.json";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
    storeNote.textContent = "Exported " + results.length + " clips to ratings.json.";
  }

  function setHash(on) {
    var url = window.location.href.split("#")[0] + (on ? "#rate" : "");
    try {
      window.history.replaceState(null, "", url);
    } catch (e) {
      if (on) { window.location.hash = "rate"; }
    }
  }

  function firstUnrated() {
    for (var i = 0; i < slots.length; i += 1) {
      if (scoreOf(slots[i].anchor, slots[i].axis) === null) { return i; }
    }
    return 0;
  }

  function enter() {
    if (!slots.length) { build(); }
    document.body.classList.add("rating");
    panel.hidden = false;
    toggle.textContent = "Leave rating mode";
    setHash(true);
    if (document.activeElement && document.activeElement.blur) { document.activeElement.blur(); }
    current = firstUnrated();
    count();
    show(true);
  }

  function leave() {
    document.body.classList.remove("rating");
    panel.hidden = true;
    toggle.textContent = "Rate these clips";
    setHash(false);
  }

  function rating() { return document.body.classList.contains("rating"); }

  var KEYS = {
    j: function () { move(1); }, ArrowDown: function () { move(1); },
    k: function () { move(-1); }, ArrowUp: function () { move(-1); },
    n: function () { moveCard(1); }, ArrowRight: function () { moveCard(1); },
    p: function () { moveCard(-1); }, ArrowLeft: function () { moveCard(-1); },
    "0": function () { rate(null, false); }, Backspace: function () { rate(null, false); },
    Delete: function () { rate(null, false); },
    " ": playPause,
    Escape: leave
  };

  document.addEventListener("keydown", function (event) {
    if (!rating() || !slots.length || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target;
    if (target && /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName)) { return; }
    var digit = Number(event.key);
    if (event.key.length === 1 && digit >= LOW && digit <= HIGH) {
      rate(digit, true);
    } else if (Object.prototype.hasOwnProperty.call(KEYS, event.key)) {
      KEYS[event.key]();
    } else {
      return;
    }
    event.preventDefault();
  });

  toggle.addEventListener("click", function () { if (rating()) { leave(); } else { enter(); } });
  document.getElementById("rate-export").addEventListener("click", exportRatings);
  nameInput.value = state.rater;
  nameInput.addEventListener("input", function () { state.rater = nameInput.value; save(); });
  window.addEventListener("hashchange", function () {
    if (window.location.hash === "#rate" && !rating()) { enter(); }
  });
  if (window.location.hash === "#rate") { enter(); }
}());
