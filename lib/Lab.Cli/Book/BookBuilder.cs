using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Lab.Cli.Highlight;
using Lab.Cli.Notebooks;
using Lab.Display;
using Markdig;
using Markdig.Renderers;
using Markdig.Syntax;

namespace Lab.Cli.Book;

/// <summary>A chapter as the book shows it.</summary>
public sealed record BookChapter(string SourcePath, string PageName, string Title, NotebookRun? Run, string? Crash)
{
    public bool Succeeded => Run?.Succeeded == true && Crash == null;
    public string Status => Crash != null ? "failed: " + Crash : Run!.Succeeded ? "ok" : $"failed at cell {Run.FailedCell}";
}

/// <summary>The written book.</summary>
public sealed record BookResult(string IndexPath, IReadOnlyList<BookChapter> Chapters)
{
    public bool Succeeded => Chapters.All(c => c.Succeeded);
}

/// <summary>
/// The static HTML book: every chapter executed on this machine, an index page with a search over every chapter's
/// prose and headings, and a page per chapter with its contents, prose, coloured code, outputs and interactive charts.
/// Works offline and from the file system: plotly.js is written once beside the pages (<see cref="PlotlyFile"/>) and
/// each page with a chart loads it with a relative &lt;script src&gt; (the engine runs with
/// <see cref="PlotlyInclusion.None"/>; a copy an output carries anyway is taken out). Code is coloured at build time by
/// Roslyn's classifier (<see cref="CSharpHighlighter"/>), so pages need no script for it.
/// </summary>
public static partial class BookBuilder
{
    /// <summary>plotly.js's file beside the pages.</summary>
    public const string PlotlyFile = "plotly.min.js";

    static readonly MarkdownPipeline Markdown = new MarkdownPipelineBuilder().UseAdvancedExtensions().Build();

    public static async Task<BookResult> BuildAsync(string notebooksFolder, string outFolder, TimeSpan? timeout,
        Action<int, int, string>? chapterStarting = null, Action<CellProgress>? cellDone = null, CancellationToken ct = default)
    {
        Directory.CreateDirectory(outFolder);
        var sources = NotebookRunner.Chapters(notebooksFolder);
        var chapters = new List<BookChapter>();
        for (int i = 0; i < sources.Count; i++)
        {
            var src = sources[i];
            var page = Path.GetFileNameWithoutExtension(src) + ".html";
            chapterStarting?.Invoke(i, sources.Count, Path.GetFileName(src));
            NotebookRun? run = null;
            string? crash = null;
            try { run = await NotebookRunner.RunAsync(src, timeout, PlotlyInclusion.None, cellDone, ct); }
            catch (Exception e) when (e is not OperationCanceledException) { crash = $"{e.GetType().Name}: {e.Message}"; }
            var nb = run?.Executed ?? TryLoad(src);
            var title = nb?.Title ?? Path.GetFileNameWithoutExtension(src);
            chapters.Add(new BookChapter(src, page, title, run, crash));
        }
        return await WriteAsync(chapters, outFolder, ct);
    }

    /// <summary>Writes the pages of chapters that have run (or could not): each page from its executed notebook, else from its source.</summary>
    public static async Task<BookResult> WriteAsync(IReadOnlyList<BookChapter> chapters, string outFolder, CancellationToken ct = default)
    {
        Directory.CreateDirectory(outFolder);
        var sections = new List<SearchSection>();
        using (var highlighter = new CSharpHighlighter())
        {
            for (int i = 0; i < chapters.Count; i++)
            {
                var c = chapters[i];
                var html = RenderChapter(c, i, c.Run?.Executed ?? TryLoad(c.SourcePath), i > 0 ? chapters[i - 1] : null,
                    i + 1 < chapters.Count ? chapters[i + 1] : null, highlighter, sections);
                await File.WriteAllTextAsync(Path.Combine(outFolder, c.PageName), html, ct);
            }
        }
        await File.WriteAllTextAsync(Path.Combine(outFolder, PlotlyFile), PlotlyFileText(), ct);
        await File.WriteAllTextAsync(Path.Combine(outFolder, BookSearch.IndexFile), BookSearch.IndexScript(chapters, sections), ct);
        await File.WriteAllTextAsync(Path.Combine(outFolder, BookSearch.ScriptFile), BookSearch.Script, ct);
        var index = Path.Combine(outFolder, "index.html");
        await File.WriteAllTextAsync(index, RenderIndex(chapters), ct);
        return new BookResult(Path.GetFullPath(index), chapters);
    }

    static Notebook? TryLoad(string path)
    {
        try { return Notebook.Load(path); } catch { return null; }
    }

    static string E(string s) => WebUtility.HtmlEncode(s);

    /// <summary>
    /// plotly.min.js as the file the pages load: the same wrapper <see cref="PlotlyJs.ScriptTag"/> puts around it inline
    /// (it defines <c>window.Plotly</c> even beside AMD or CommonJS globals, then draws the charts that waited for it).
    /// </summary>
    static string PlotlyFileText() =>
        "/* " + PlotlyJs.ResourceName + ", as Plotly.NET ships it; written by `lab book`. */\n(function(define, module, exports){\n" +
        PlotlyJs.Source + "\n}).call(window);\n" +
        "(window.__labPlotlyWaiting || []).forEach(function(f){ try { f(); } catch (e) { console.error(e); } });\nwindow.__labPlotlyWaiting = [];\n";

    const string InlinePlotlyStart = "<script type=\"text/javascript\" data-lab-plotly-js=";

    /// <summary>
    /// <paramref name="html"/> without the copies of plotly.js it carries inline (an output made by a host that adds
    /// plotly.js to a chart, <see cref="PlotlyJs.ScriptTag"/>): the page loads <see cref="PlotlyFile"/> instead.
    /// </summary>
    public static string WithoutInlinePlotlyJs(string html)
    {
        int at;
        while ((at = html.IndexOf(InlinePlotlyStart, StringComparison.Ordinal)) >= 0)
        {
            var end = html.IndexOf("</script>", at, StringComparison.Ordinal);
            if (end < 0) break;
            end += "</script>".Length;
            if (end < html.Length && html[end] == '\n') end++;
            html = html.Remove(at, end - at);
        }
        return html;
    }

    const string Css = """
        body { font: 16px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2330; background: #fff; }
        nav.top { padding: .6em 1.5em; background: #f3f5f9; border-bottom: 1px solid #dde2ea; font-size: 14px; }
        nav.top a { color: #2a5db0; text-decoration: none; margin-right: 1em; }
        .page { max-width: 1300px; margin: 0 auto; }
        main { max-width: 980px; min-width: 0; margin: 0 auto; padding: 1em 1.5em 4em; }
        nav.toc { font-size: 14px; line-height: 1.4; padding: .8em 1.5em; max-width: 980px; margin: 0 auto; box-sizing: border-box; }
        nav.toc .toc-title { font-weight: 600; color: #5a6478; text-transform: uppercase; font-size: 12px; letter-spacing: .04em; }
        nav.toc ul { list-style: none; padding-left: 0; margin: .3em 0; }
        nav.toc ul ul { padding-left: 1em; }
        nav.toc li { margin: .25em 0; }
        nav.toc a { color: #2a5db0; text-decoration: none; }
        nav.toc a:hover { text-decoration: underline; }
        @media (min-width: 1200px) {
          .page.with-toc { display: grid; grid-template-columns: 260px minmax(0, 1fr); }
          nav.toc { position: sticky; top: 0; align-self: start; max-height: 100vh; overflow-y: auto; border-right: 1px solid #e3e7ee; }
          .page.with-toc main { margin: 0; }
        }
        @media (max-width: 1199px) { nav.toc { border-bottom: 1px solid #e3e7ee; } }
        pre { overflow-x: auto; font: 13.5px/1.45 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
        .cell { margin: 1.2em 0; }
        .prompt { font: 12px ui-monospace, monospace; color: #8a93a6; }
        pre.code, .md pre { background: #f6f8fa; border: 1px solid #e3e7ee; border-radius: 6px; padding: .7em .9em; margin: .2em 0; }
        .outputs { border-left: 3px solid #e3e7ee; padding-left: .8em; margin-top: .3em; min-width: 0; }
        .out { max-width: 100%; overflow-x: auto; box-sizing: border-box; }
        /* A visible scrollbar where a box scrolls (overlay scrollbars hide until touched: a cut-off look). */
        .out, pre, .md table { scrollbar-width: thin; scrollbar-color: #b8c0cc transparent; }
        pre.out { margin: .3em 0; padding: .3em 0; }
        pre.stream-stderr { color: #9a5b00; }
        pre.error { background: #fff0f0; border: 1px solid #f2b8b8; border-radius: 6px; padding: .7em .9em; color: #8b1111; }
        .status { padding: .5em .8em; border-radius: 6px; margin: 1em 0; font-size: 14px; }
        .status.ok { background: #eef8ef; color: #1e6b2a; }
        .status.failed { background: #fff0f0; color: #8b1111; }
        table { border-collapse: collapse; margin: .5em 0; }
        .md table { display: block; max-width: 100%; overflow-x: auto; }
        th, td { border: 1px solid #dde2ea; padding: .25em .6em; text-align: left; }
        th { background: #f3f5f9; }
        td.failed { color: #8b1111; } td.ok { color: #1e6b2a; }
        .search { margin: 1.5em 0; }
        .search input { font: inherit; width: 100%; box-sizing: border-box; padding: .5em .7em; border: 1px solid #c9d0dc; border-radius: 6px; }
        .search ol { padding-left: 1.4em; }
        .search li { margin: .7em 0; }
        .search .where { font-size: 13px; color: #5a6478; }
        .search .snippet { margin: .2em 0 0; font-size: 14px; color: #39414f; }
        .search mark { background: #fff1a8; }
        """;

    static string Page(string title, string body, bool withPlotly, string? scripts = null) => new StringBuilder()
        .Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
        .Append("<title>").Append(E(title)).Append("</title>\n<style>\n").Append(Css).Append(CSharpHighlighter.Css).Append("\n</style>\n")
        .Append(withPlotly ? $"<script src=\"{PlotlyFile}\" data-lab-plotly-js=\"{E(PlotlyJs.ResourceName)}\"></script>\n" : "")
        .Append("</head>\n<body>\n").Append(body).Append(scripts ?? "").Append("</body>\n</html>\n").ToString();

    static string RenderIndex(IReadOnlyList<BookChapter> chapters)
    {
        var sb = new StringBuilder();
        sb.Append("<nav class=\"top\"><a href=\"index.html\">Backend Accept Lab</a></nav>\n<main>\n<h1>Backend Accept Lab</h1>\n");
        sb.Append("<p>Every chapter below was executed on this machine: ").Append(E(Environment.OSVersion.VersionString))
          .Append(", ").Append(E(DateTime.Now.ToString("yyyy-MM-dd HH:mm"))).Append(".</p>\n");
        var failed = chapters.Count(c => !c.Succeeded);
        sb.Append("<div class=\"status ").Append(failed == 0 ? "ok" : "failed").Append("\">")
          .Append(failed == 0 ? $"All {chapters.Count} chapters ran." : $"{failed} of {chapters.Count} chapters failed.").Append("</div>\n");
        sb.Append("<div class=\"search\" role=\"search\">\n<label for=\"search\">Search every chapter's prose and headings</label>\n")
          .Append("<input id=\"search\" type=\"search\" placeholder=\"e.g. SYN cookies, somaxconn, EPOLLEXCLUSIVE\" autocomplete=\"off\">\n")
          .Append("<p id=\"search-count\" class=\"where\"></p>\n<ol id=\"search-results\"></ol>\n</div>\n");
        sb.Append("<table class=\"chapters\">\n<thead><tr><th>Chapter</th><th>Status</th><th>Time</th></tr></thead>\n<tbody>\n");
        foreach (var c in chapters)
        {
            sb.Append("<tr><td><a href=\"").Append(E(c.PageName)).Append("\">").Append(E(c.Title)).Append("</a></td>")
              .Append("<td class=\"").Append(c.Succeeded ? "ok" : "failed").Append("\">").Append(E(c.Status)).Append("</td>")
              .Append("<td>").Append(c.Run != null ? $"{c.Run.Duration.TotalSeconds:0.0} s" : "").Append("</td></tr>\n");
        }
        sb.Append("</tbody>\n</table>\n</main>\n");
        var scripts = $"<script src=\"{BookSearch.IndexFile}\"></script>\n<script src=\"{BookSearch.ScriptFile}\"></script>\n";
        return Page("Backend Accept Lab", sb.ToString(), withPlotly: false, scripts);
    }

    /// <summary>A heading of a chapter page: its level, text and anchor.</summary>
    sealed record Heading(int Level, string Text, string Id);

    static string RenderChapter(BookChapter chapter, int chapterIndex, Notebook? nb, BookChapter? prev, BookChapter? next,
        CSharpHighlighter highlighter, List<SearchSection> sections)
    {
        var sb = new StringBuilder();
        var run = chapter.Run;
        if (chapter.Crash != null)
            sb.Append("<div class=\"status failed\">This chapter could not run: ").Append(E(chapter.Crash)).Append("</div>\n");
        else if (run!.Succeeded)
            sb.Append("<div class=\"status ok\">Ran on this machine in ").Append($"{run.Duration.TotalSeconds:0.0}").Append(" s.</div>\n");
        else
            sb.Append("<div class=\"status failed\">").Append(E(run.FailureMessage ?? $"failed at cell {run.FailedCell}")).Append("</div>\n");
        var hasChart = false;
        var headings = new List<Heading>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        // Search sections: the prose from one heading to the next, across cells; code cells are not searched.
        var section = new SearchSection(chapterIndex, chapter.Title, "", new StringBuilder());
        sections.Add(section);
        var usings = new List<string>();
        if (nb != null)
        {
            int codeIndex = 0;
            foreach (var cell in nb.Cells)
            {
                if (cell.CellType == "markdown")
                {
                    sb.Append("<section class=\"md\">\n").Append(RenderMarkdown(cell.Source, headings, ids, ref section, chapterIndex, sections, highlighter, usings))
                      .Append("</section>\n");
                    continue;
                }
                if (!cell.IsCode || string.IsNullOrWhiteSpace(cell.Source)) continue;
                codeIndex++;
                sb.Append("<div class=\"cell\" id=\"cell-").Append(codeIndex).Append("\">\n<div class=\"prompt\">In [")
                  .Append(cell.ExecutionCount?.ToString() ?? " ").Append("]:</div>\n<pre class=\"code\"><code class=\"language-csharp\">")
                  .Append(highlighter.ToHtml(cell.Source, usings)).Append("</code></pre>\n");
                usings.AddRange(CSharpHighlighter.UsingsIn(cell.Source));
                List<JsonObject> outputs;
                lock (cell.Outputs) outputs = cell.Outputs.ToList();
                if (outputs.Count > 0)
                {
                    sb.Append("<div class=\"outputs\">\n");
                    foreach (var o in outputs) sb.Append(RenderOutput(o, ref hasChart));
                    sb.Append("</div>\n");
                }
                sb.Append("</div>\n");
            }
        }
        var page = new StringBuilder();
        page.Append("<nav class=\"top\"><a href=\"index.html\">Backend Accept Lab</a>");
        if (prev != null) page.Append("<a href=\"").Append(E(prev.PageName)).Append("\">← ").Append(E(prev.Title)).Append("</a>");
        if (next != null) page.Append("<a href=\"").Append(E(next.PageName)).Append("\">").Append(E(next.Title)).Append(" →</a>");
        var toc = Toc(headings);
        page.Append("</nav>\n<div class=\"page").Append(toc.Length > 0 ? " with-toc" : "").Append("\">\n").Append(toc)
            .Append("<main>\n").Append(sb).Append("</main>\n</div>\n");
        return Page(chapter.Title, page.ToString(), hasChart);
    }

    /// <summary>The page's contents: its headings below the title (h2, h3 nested under them), each a link to its anchor; empty without any.</summary>
    static string Toc(IReadOnlyList<Heading> headings)
    {
        if (!headings.Any(h => h.Level > 1)) return "";
        var sb = new StringBuilder("<nav class=\"toc\" aria-label=\"Contents\">\n<div class=\"toc-title\">Contents</div>\n<ul>\n");
        var top = headings.Where(h => h.Level > 1).Select(h => h.Level).DefaultIfEmpty(2).Min();
        bool open = false; // an h3 list is open inside the last h2's item
        bool item = false;
        foreach (var h in headings.Where(h => h.Level == top || h.Level == top + 1))
        {
            if (h.Level == top)
            {
                if (open) { sb.Append("</ul>"); open = false; }
                if (item) sb.Append("</li>\n");
                sb.Append("<li><a href=\"#").Append(E(h.Id)).Append("\">").Append(E(h.Text)).Append("</a>");
                item = true;
            }
            else
            {
                if (!open) { sb.Append("\n<ul>\n"); open = true; }
                sb.Append("<li><a href=\"#").Append(E(h.Id)).Append("\">").Append(E(h.Text)).Append("</a></li>\n");
            }
        }
        if (open) sb.Append("</ul>");
        if (item) sb.Append("</li>\n");
        sb.Append("</ul>\n</nav>\n");
        return sb.ToString();
    }

    static string RenderMarkdown(string source, List<Heading> headings, HashSet<string> ids, ref SearchSection section, int chapterIndex,
        List<SearchSection> sections, CSharpHighlighter highlighter, IReadOnlyList<string> usings)
    {
        var doc = Markdig.Markdown.Parse(source, Markdown);
        foreach (var block in doc)
        {
            if (block is HeadingBlock h)
            {
                var text = InlineText(h.Inline).Trim();
                var attrs = Markdig.Renderers.Html.HtmlAttributesExtensions.GetAttributes(h);
                var id = string.IsNullOrEmpty(attrs.Id) ? "section" : attrs.Id;
                // Anchors are unique per page: each prose cell is its own Markdown document, and two may repeat a heading.
                var unique = id;
                for (int n = 2; !ids.Add(unique); n++) unique = $"{id}-{n}";
                attrs.Id = unique;
                headings.Add(new Heading(h.Level, text, unique));
                section = new SearchSection(chapterIndex, text, h.Level == 1 ? "" : unique, new StringBuilder());
                sections.Add(section);
                continue;
            }
            if (block.Span.Length > 0 && block.Span.End < source.Length + 1)
            {
                var raw = source.Substring(block.Span.Start, Math.Min(block.Span.Length, source.Length - block.Span.Start));
                section.Text.Append(Markdig.Markdown.ToPlainText(raw, Markdown).Replace('|', ' ')).Append(' ');
            }
        }
        using var writer = new StringWriter();
        var renderer = new HtmlRenderer(writer);
        Markdown.Setup(renderer);
        renderer.Render(doc);
        writer.Flush();
        // C# in the prose's fenced blocks is coloured like the cells.
        return FencedCSharp().Replace(writer.ToString(), m =>
            m.Groups[1].Value + highlighter.ToHtml(WebUtility.HtmlDecode(m.Groups[2].Value), usings) + "</code>");
    }

    static string InlineText(Markdig.Syntax.Inlines.Inline? inline) => inline switch
    {
        null => "",
        Markdig.Syntax.Inlines.LiteralInline l => l.Content.ToString(),
        Markdig.Syntax.Inlines.CodeInline c => c.Content,
        Markdig.Syntax.Inlines.ContainerInline box => string.Concat(box.Select(InlineText)),
        _ => "",
    };

    [GeneratedRegex(@"(<code class=""language-(?:csharp|cs|c#)"">)(.*?)</code>", RegexOptions.Singleline)]
    private static partial Regex FencedCSharp();

    [GeneratedRegex(@"\x1b\[[0-9;]*[A-Za-z]")]
    private static partial Regex Ansi();

    static string RenderOutput(JsonObject o, ref bool hasChart)
    {
        switch ((string?)o["output_type"])
        {
            case "stream":
                var name = (string?)o["name"] ?? "stdout";
                return $"<pre class=\"out stream-{E(name)}\">{E(Notebook.ReadText(o["text"]))}</pre>\n";
            case "error":
                var tb = o["traceback"] is JsonArray a ? string.Join("\n", a.Select(x => (string?)x ?? "")) : "";
                return $"<pre class=\"out error\"><b>{E((string?)o["ename"] ?? "Error")}</b>\n{E(Ansi().Replace(tb, ""))}</pre>\n";
            case "display_data" or "execute_result":
                var data = Outputs.ReadData(o);
                if (data.Html is { } html)
                {
                    if (PlotlyJs.IsIn(html)) { html = WithoutInlinePlotlyJs(html); hasChart = true; }
                    if (ChartHtml.ContainsChart(html)) hasChart = true;
                    return $"<div class=\"out html\">\n{html}\n</div>\n";
                }
                if (data.TryGetValue("image/svg+xml", out var svg)) return $"<div class=\"out\">{svg}</div>\n";
                if (data.TryGetValue("image/png", out var png)) return $"<div class=\"out\"><img src=\"data:image/png;base64,{png.Trim()}\"></div>\n";
                return $"<pre class=\"out\">{E(data.Text)}</pre>\n";
            default:
                return "";
        }
    }
}
