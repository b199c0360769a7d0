using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Lab.Cli.Book;

/// <summary>The prose of one chapter from one heading to the next: what the book's search looks through.</summary>
public sealed record SearchSection(int Chapter, string Heading, string Anchor, StringBuilder Text);

/// <summary>
/// The book's search, with no library: at build time every chapter's prose is cut into sections at its headings and
/// written as a script (<see cref="IndexFile"/>, a script and not JSON because a page opened from the file system may
/// load scripts but not fetch files); in the page, <see cref="Script"/> looks for every word of the query in each
/// section (a heading counts more, the words together as typed more still) and links to the section's anchor.
/// </summary>
public static partial class BookSearch
{
    public const string IndexFile = "search-index.js";
    public const string ScriptFile = "search.js";

    [GeneratedRegex(@"\s+")]
    private static partial Regex Space();

    /// <summary><c>window.LAB_SEARCH = {chapters: [{page, title}], sections: [{c, h, a, x}]}</c>.</summary>
    public static string IndexScript(IReadOnlyList<BookChapter> chapters, IReadOnlyList<SearchSection> sections)
    {
        var chapterArray = new JsonArray(chapters.Select(c => (JsonNode)new JsonObject { ["page"] = c.PageName, ["title"] = c.Title }).ToArray());
        var sectionArray = new JsonArray();
        foreach (var s in sections)
        {
            var text = Space().Replace(s.Text.ToString(), " ").Trim();
            if (text.Length == 0 && s.Anchor.Length == 0) continue;
            sectionArray.Add(new JsonObject { ["c"] = s.Chapter, ["h"] = s.Heading, ["a"] = s.Anchor, ["x"] = text });
        }
        var root = new JsonObject { ["chapters"] = chapterArray, ["sections"] = sectionArray };
        var json = root.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping })
            .Replace("</", "<\\/");
        return "/* The book's search index, written by `lab book`: every chapter's prose, cut at its headings. */\nwindow.LAB_SEARCH = " + json + ";\n";
    }

    /// <summary>The search box's behaviour on the index page (ids search, search-count, search-results).</summary>
    public const string Script = """
        /* The book's search: every word of the query must appear in a section (its heading or its prose). */
        (function () {
          var data = window.LAB_SEARCH || { chapters: [], sections: [] };
          var input = document.getElementById('search');
          var list = document.getElementById('search-results');
          var count = document.getElementById('search-count');
          if (!input || !list) return;
          function norm(s) { return s.toLowerCase().normalize('NFKD').replace(/[\u0300-\u036f]/g, ''); }
          var sections = data.sections.map(function (s) { return { s: s, h: norm(s.h), x: norm(s.x) }; });
          function words(q) { return norm(q).split(/[^a-z0-9_.:\-]+/).map(function (w) { return w.replace(/^[.:\-]+|[.:\-]+$/g, ''); }).filter(Boolean); }
          function occurrences(text, w) { var n = 0, i = -1; while ((i = text.indexOf(w, i + 1)) >= 0 && n < 10) n++; return n; }
          function esc(s) { return s.replace(/[&<>"]/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]; }); }
          function marked(text, ws) {
            var out = esc(text);
            ws.slice().sort(function (a, b) { return b.length - a.length; }).forEach(function (w) {
              var re = new RegExp('(' + esc(w).replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + ')', 'gi');
              out = out.replace(re, '<mark>$1</mark>');
            });
            return out;
          }
          function snippet(s, ws, phrase) {
            var x = norm(s.x), at = phrase ? x.indexOf(phrase) : -1;
            if (at < 0) for (var i = 0; i < ws.length && at < 0; i++) at = x.indexOf(ws[i]);
            if (at < 0) at = 0;
            var from = Math.max(0, at - 80), to = Math.min(s.x.length, at + 160);
            return (from > 0 ? '… ' : '') + s.x.slice(from, to) + (to < s.x.length ? ' …' : '');
          }
          function search(q) {
            var ws = words(q);
            list.innerHTML = '';
            if (ws.length === 0) { count.textContent = ''; return; }
            var phrase = ws.length > 1 ? ws.join(' ') : '';
            var hits = [];
            sections.forEach(function (e) {
              var score = 0;
              for (var i = 0; i < ws.length; i++) {
                var inHeading = e.h.indexOf(ws[i]) >= 0, n = occurrences(e.x, ws[i]);
                if (!inHeading && n === 0) return;
                score += (inHeading ? 10 : 0) + n;
              }
              if (phrase && (e.h.indexOf(phrase) >= 0)) score += 30;
              if (phrase && (e.x.indexOf(phrase) >= 0)) score += 15;
              hits.push({ e: e, score: score });
            });
            hits.sort(function (a, b) { return b.score - a.score; });
            count.textContent = hits.length === 0 ? 'No section mentions all of: ' + ws.join(' ') : hits.length + ' section' + (hits.length === 1 ? '' : 's');
            hits.slice(0, 30).forEach(function (hit) {
              var s = hit.e.s, ch = data.chapters[s.c];
              var li = document.createElement('li');
              var href = ch.page + (s.a ? '#' + encodeURIComponent(s.a) : '');
              li.innerHTML = '<a class="hit" href="' + esc(href) + '">' + marked(s.h || ch.title, ws) + '</a>' +
                '<div class="where">' + esc(ch.title) + '</div>' +
                '<p class="snippet">' + marked(snippet(s, ws, phrase), ws) + '</p>';
              list.appendChild(li);
            });
          }
          input.addEventListener('input', function () { search(input.value); });
          input.addEventListener('keydown', function (ev) {
            if (ev.key !== 'Enter') return;
            var first = list.querySelector('a.hit');
            if (first) window.location.href = first.getAttribute('href');
          });
          if (input.value) search(input.value);
        })();
        """;
}
