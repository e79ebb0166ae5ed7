/* gprofiler-agent's flame-graph viewer: the glue between the profile that
   the agent embeds in the page (the JSON block "gpa-profile", written by
   format/flamegraph_tree.cpp) and d3-flame-graph. It builds the tree
   to draw (one child of "all" per process, filtered by process and
   container), and wires search, zoom, tooltips, colours and the header.
   Every text that comes from the profile is set with textContent, never as
   markup. Nothing here touches the network. */
(function () {
  'use strict';

  var HIGHLIGHT = '#e600e6';
  // Hue range, saturation and lightness per frame kind; the name picks the
  // hue and lightness inside the range, so neighbours are told apart.
  var PALETTE = {
    native: [45, 60, 78, 58],
    kernel: [18, 32, 85, 58],
    python: [198, 218, 70, 66],
    java: [95, 125, 50, 55],
    ruby: [340, 356, 60, 72],
    php: [250, 272, 50, 72],
    dotnet: [168, 186, 52, 52],
    error: [0, 2, 85, 50],
    pruned: [0, 0, 0, 82],
    process: [225, 235, 18, 76],
    root: [0, 0, 0, 68]
  };
  var KIND_LABELS = {
    native: 'native', kernel: 'kernel', python: 'Python', java: 'Java',
    ruby: 'Ruby', php: 'PHP', dotnet: '.NET', error: 'profiler error',
    pruned: 'pruned / truncated', process: 'process', root: 'all'
  };

  // Marks for the benchmark (performance.getEntriesByType('mark')).
  function mark(name) {
    if (window.performance && performance.mark) performance.mark(name);
  }
  mark('gpa-viewer-start');
  var profile = JSON.parse(document.getElementById('gpa-profile').textContent);
  mark('gpa-data-parsed');
  var names = profile.names;
  var kinds = profile.kinds;
  var kindNames = profile.kind_names;
  var K = {};
  kindNames.forEach(function (n, i) { K[n] = i; });

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fmt(n) { return Number(n).toLocaleString('en-US'); }
  function pct(part, whole) {
    return whole > 0 ? (100 * part / whole).toFixed(2) + '%' : '0.00%';
  }
  function hash(s) {
    var h = 2166136261;
    for (var i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 16777619);
    }
    return (h >>> 0) / 4294967296;
  }
  function debounce(f, ms) {
    var t = null;
    return function () {
      clearTimeout(t);
      t = setTimeout(f, ms);
    };
  }

  // -- the tree to draw ---------------------------------------------------------

  // Merges encoded nodes ([name, total, child, ...]) that share a name into
  // one object tree, without recursion.
  function decode(list, kind) {
    var top = { name: names[list[0][0]], value: 0, kind: kind };
    list.forEach(function (a) { top.value += a[1]; });
    var stack = [[list, top]];
    while (stack.length) {
      var item = stack.pop();
      var arrs = item[0];
      var obj = item[1];
      var i, c, o;
      if (arrs.length === 1) {
        var a = arrs[0];
        if (a.length > 2) {
          obj.children = [];
          for (i = 2; i < a.length; i++) {
            c = a[i];
            o = { name: names[c[0]], value: c[1], kind: kinds[c[0]] };
            obj.children.push(o);
            stack.push([[c], o]);
          }
        }
        continue;
      }
      var byName = new Map();
      arrs.forEach(function (a) {
        for (var j = 2; j < a.length; j++) {
          var l = byName.get(a[j][0]);
          if (!l) byName.set(a[j][0], (l = []));
          l.push(a[j]);
        }
      });
      if (byName.size) {
        obj.children = [];
        byName.forEach(function (l, n) {
          var v = 0;
          l.forEach(function (x) { v += x[1]; });
          var child = { name: names[n], value: v, kind: kinds[n] };
          obj.children.push(child);
          stack.push([l, child]);
        });
      }
    }
    return top;
  }

  // The tree of the processes matching the filters (null: all).
  function buildTree(comm, container) {
    var byComm = new Map();
    var total = 0;
    profile.groups.forEach(function (g) {
      var node = g[1];
      if (container !== null && names[g[0]] !== container) return;
      if (comm !== null && names[node[0]] !== comm) return;
      var l = byComm.get(node[0]);
      if (!l) byComm.set(node[0], (l = []));
      l.push(node);
      total += node[1];
    });
    var root = { name: 'all', value: total, kind: K.root, children: [] };
    byComm.forEach(function (l) { root.children.push(decode(l, K.process)); });
    return root;
  }

  // -- header -------------------------------------------------------------------

  var meta = profile.meta || {};
  function fact(label, value) {
    if (value === undefined || value === null || value === '') return;
    var item = el('div', 'gpa-fact');
    item.appendChild(el('dt', null, label));
    var dd = el('dd', null, value);
    dd.id = 'gpa-fact-' + label.toLowerCase().replace(/[^a-z]+/g, '-');
    item.appendChild(dd);
    $('gpa-facts').appendChild(item);
  }
  $('gpa-host').textContent = meta.hostname || '';
  if (meta.hostname) document.title = 'Flame graph: ' + meta.hostname;
  var window_ = meta.start_time && meta.end_time
    ? meta.start_time + ' \u2013 ' + meta.end_time
    : meta.end_time || meta.start_time || meta.current_time || 'unknown';
  fact('Window', window_);
  fact('Samples', fmt(profile.total));
  fact('Service', meta.service_name);
  fact('CPU avg', meta.cpu_avg !== undefined ? meta.cpu_avg + '%' : '');
  fact('Memory avg', meta.mem_avg !== undefined ? meta.mem_avg + '%' : '');
  fact('Mode', meta.profiling_mode);
  fact('Agent', meta.agent_version);
  fact('Kernel', meta.kernel_release);
  $('gpa-total').textContent = String(profile.total);

  if (profile.errors.length) {
    var errors = $('gpa-errors');
    var more = profile.dropped_errors
      ? ' (+' + fmt(profile.dropped_errors) + ' more)' : '';
    errors.querySelector('summary').textContent =
      fmt(profile.errors.length) + ' profiler error' +
      (profile.errors.length === 1 ? '' : 's') + more;
    var ul = errors.querySelector('ul');
    profile.errors.forEach(function (e) {
      var li = el('li');
      li.appendChild(el('span', 'gpa-comm', e.comm));
      li.appendChild(el('span', 'gpa-error-text', e.text));
      li.appendChild(el('span', 'gpa-samples', fmt(e.samples) + ' samples'));
      ul.appendChild(li);
    });
    errors.hidden = false;
  }

  var notes = [];
  if (profile.header_error) notes.push(profile.header_error);
  if (profile.skipped_lines) {
    notes.push(fmt(profile.skipped_lines) + ' malformed line' +
      (profile.skipped_lines === 1 ? '' : 's') + ' skipped');
  }
  if (profile.truncated_stacks) {
    notes.push(fmt(profile.truncated_stacks) + ' stacks cut at the depth limit');
  }
  if (profile.prune_threshold > 1) {
    notes.push('frames under ' + fmt(profile.prune_threshold) +
      ' samples merged into [pruned]');
  }
  $('gpa-notes').textContent = notes.join(' \u00b7 ');

  // Legend: the kinds that occur in this profile.
  var seen = {};
  kinds.forEach(function (k) { seen[kindNames[k]] = true; });
  seen.process = true;
  var legend = $('gpa-legend');
  kindNames.forEach(function (k) {
    if (!seen[k] || k === 'root') return;
    var item = el('span', 'gpa-legend-item');
    var sw = el('span', 'gpa-swatch');
    var p = PALETTE[k];
    sw.style.backgroundColor = 'hsl(' + p[0] + ',' + p[2] + '%,' + p[3] + '%)';
    item.appendChild(sw);
    item.appendChild(document.createTextNode(KIND_LABELS[k] || k));
    legend.appendChild(item);
  });

  // -- filters ------------------------------------------------------------------

  function fillSelect(select, allLabel, values, show) {
    var all = el('option', null, allLabel);
    all.value = '';
    select.appendChild(all);
    values.forEach(function (v) {
      var o = el('option', null, show(v));
      o.value = v.key;
      select.appendChild(o);
    });
  }
  function totalsBy(key) {
    var m = new Map();
    profile.groups.forEach(function (g) {
      var k = key(g);
      m.set(k, (m.get(k) || 0) + g[1][1]);
    });
    var list = [];
    m.forEach(function (v, k) { list.push({ key: k, samples: v }); });
    list.sort(function (a, b) { return b.samples - a.samples; });
    return list;
  }
  var comms = totalsBy(function (g) { return names[g[1][0]]; });
  var containers = totalsBy(function (g) { return names[g[0]]; });
  var commSelect = $('gpa-comm');
  var containerSelect = $('gpa-container');
  fillSelect(commSelect, 'all processes (' + fmt(comms.length) + ')', comms,
    function (v) { return v.key + ' \u2014 ' + pct(v.samples, profile.total); });
  fillSelect(containerSelect, 'all containers', containers, function (v) {
    return (v.key === '' ? '(no container)' : v.key) + ' \u2014 ' +
      pct(v.samples, profile.total);
  });
  if (containers.length < 2 && (!containers.length || containers[0].key === '')) {
    $('gpa-container-label').hidden = true;
  }
  // An option's value '' means "all"; a real container may be named '' too,
  // so the container select marks "all" by its index instead.
  function selected() {
    var comm = commSelect.selectedIndex > 0 ? commSelect.value : null;
    var container = containerSelect.selectedIndex > 0
      ? containerSelect.value : null;
    return [comm, container];
  }

  // -- tooltip ------------------------------------------------------------------

  var tipEl = el('div', 'gpa-tip');
  tipEl.id = 'gpa-tip';
  tipEl.hidden = true;
  document.body.appendChild(tipEl);
  var mouseX = 0;
  var mouseY = 0;
  function placeTip() {
    var w = tipEl.offsetWidth;
    var h = tipEl.offsetHeight;
    var x = mouseX + 14;
    var y = mouseY + 16;
    if (x + w > window.innerWidth - 4) x = Math.max(4, mouseX - w - 14);
    if (y + h > window.innerHeight - 4) y = Math.max(4, mouseY - h - 12);
    tipEl.style.left = x + 'px';
    tipEl.style.top = y + 'px';
  }
  document.addEventListener('mousemove', function (e) {
    mouseX = e.clientX;
    mouseY = e.clientY;
    if (!tipEl.hidden) placeTip();
  });
  var shownTotal = profile.total;
  function kindOf(d) {
    return kindNames[d.data.kind] || 'native';
  }
  function tip() {}
  tip.show = function (d) {
    tipEl.textContent = '';
    tipEl.appendChild(el('div', 'gpa-tip-name', d.data.name));
    var line = fmt(d.data.value) + ' samples \u00b7 ' +
      pct(d.data.value, shownTotal) + ' of shown';
    if (d.parent) line += ' \u00b7 ' + pct(d.data.value, d.parent.data.value) + ' of parent';
    tipEl.appendChild(el('div', 'gpa-tip-count', line));
    tipEl.appendChild(el('div', 'gpa-tip-kind', KIND_LABELS[kindOf(d)] || kindOf(d)));
    tipEl.hidden = false;
    placeTip();
  };
  tip.hide = function () { tipEl.hidden = true; };

  // -- the chart ----------------------------------------------------------------

  function colour(d) {
    if (d.highlight) return HIGHLIGHT;
    var p = PALETTE[kindOf(d)] || PALETTE.native;
    var r = hash(d.data.name);
    var hue = p[0] + (p[1] - p[0]) * r;
    var light = p[3] + 8 * (hash(d.data.name + '#') - 0.5);
    return 'hsl(' + hue.toFixed(1) + ',' + p[2] + '%,' + light.toFixed(1) + '%)';
  }

  var details = $('gpa-details');
  var searchText = '';
  var term = '';
  var chartEl = $('gpa-chart');
  function chartWidth() { return Math.max(320, chartEl.clientWidth); }

  var chart = window.flamegraph()
    .width(chartWidth())
    .cellHeight(18)
    .minFrameSize(1)
    .sort(true)
    .title('')
    .transitionDuration(0)
    .tooltip(tip)
    .setColorMapper(function (d) { return colour(d); })
    .setLabelHandler(function (d) {
      return d.data.name + ' \u2014 ' + fmt(d.data.value) + ' samples (' +
        pct(d.data.value, shownTotal) + ')';
    })
    .setDetailsElement(details)
    .setDetailsHandler(function (s) { details.textContent = s || searchText; })
    .setSearchMatch(function (d, t) {
      return !!t && d.data.name.toLowerCase().indexOf(t.toLowerCase()) !== -1;
    })
    .setSearchHandler(function (results, sum, total) {
      searchText = fmt(results.length) + ' frame' +
        (results.length === 1 ? '' : 's') + ' match \u201c' + term + '\u201d: ' +
        fmt(sum) + ' samples (' + pct(sum, total) + ')';
      details.textContent = searchText;
      $('gpa-matches').textContent = String(results.length);
    })
    .onClick(function (d) {
      $('gpa-zoomed').textContent = d.depth > 0 ? d.data.name : '';
      $('gpa-reset').disabled = d.depth === 0;
    });

  function applySearch() {
    term = $('gpa-search').value.trim();
    if (term) {
      chart.search(term);
    } else {
      searchText = '';
      $('gpa-matches').textContent = '';
      chart.clear();
    }
  }

  function redraw() {
    var f = selected();
    var data = buildTree(f[0], f[1]);
    shownTotal = data.value;
    $('gpa-shown').textContent = shownTotal === profile.total
      ? '' : 'showing ' + fmt(shownTotal) + ' of ' + fmt(profile.total) + ' samples';
    $('gpa-zoomed').textContent = '';
    $('gpa-reset').disabled = true;
    // A new tree is drawn afresh: d3's join by node id would animate frames
    // of the old tree into unrelated places.
    tipEl.hidden = true;
    chart.destroy();
    chart.height(null).transitionDuration(0);
    window.d3.select(chartEl).datum(data).call(chart);
    chart.transitionDuration(300);
    if (term) chart.search(term);
  }

  if (!profile.total) {
    chartEl.appendChild(el('p', 'gpa-empty', 'This profile has no samples.'));
    document.documentElement.setAttribute('data-gpa-drawn',
      performance.now().toFixed(1));
    document.documentElement.setAttribute('data-gpa-frames', '0');
    return;
  }

  var first = buildTree(null, null);
  shownTotal = first.value;
  window.d3.select(chartEl).datum(first).call(chart);
  mark('gpa-chart-built');

  // Drawn once the frames have their widths and labels (d3 sets them all in
  // one timer tick) and the browser has painted them: the benchmark reads
  // data-gpa-drawn, in ms since navigation start.
  (function waitDrawn() {
    var rootRect = chartEl.querySelector('g.frame rect');
    var label = chartEl.querySelector('g.frame div');
    if (rootRect && +rootRect.getAttribute('width') > 0 && label &&
        label.textContent) {
      chart.transitionDuration(300);
      requestAnimationFrame(function () {
        setTimeout(function () {
          mark('gpa-drawn');
          var root = document.documentElement;
          root.setAttribute('data-gpa-drawn', performance.now().toFixed(1));
          root.setAttribute('data-gpa-frames',
            String(chartEl.querySelectorAll('g.frame').length));
        }, 0);
      });
      return;
    }
    requestAnimationFrame(waitDrawn);
  })();

  $('gpa-search').addEventListener('input', debounce(applySearch, 150));
  $('gpa-search').addEventListener('keydown', function (e) {
    if (e.key === 'Enter') applySearch();
    if (e.key === 'Escape') {
      $('gpa-search').value = '';
      applySearch();
    }
  });
  $('gpa-clear').addEventListener('click', function () {
    $('gpa-search').value = '';
    applySearch();
  });
  $('gpa-reset').addEventListener('click', function () {
    chart.resetZoom();
  });
  commSelect.addEventListener('change', redraw);
  containerSelect.addEventListener('change', redraw);
  document.addEventListener('keydown', function (e) {
    if (e.key === '/' && document.activeElement !== $('gpa-search')) {
      e.preventDefault();
      $('gpa-search').focus();
    }
  });
  window.addEventListener('resize', debounce(function () {
    chart.width(chartWidth());
    chart.update();
  }, 200));
})();
