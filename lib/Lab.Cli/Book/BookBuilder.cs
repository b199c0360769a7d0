using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Lab.Cli.Notebooks;
using Lab.Display;
using Markdig;

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
/// The static HTML book: every chapter executed on this machine, an index page, and a page per chapter with prose,
/// code, outputs and interactive charts. Works offline: each page that has a chart inlines plotly.js once in its head
/// (the engine runs with <see cref="PlotlyInclusion.None"/>, so outputs carry no copy of their own).
/// </summary>
public static partial class BookBuilder
{
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
        for (int i = 0; i < chapters.Count; i++)
        {
            var c = chapters[i];
            var html = RenderChapter(c, c.Run?.Executed ?? TryLoad(c.SourcePath), i > 0 ? chapters[i - 1] : null, i + 1 < chapters.Count ? chapters[i + 1] : null);
            await File.WriteAllTextAsync(Path.Combine(outFolder, c.PageName), html, ct);
        }
        var index = Path.Combine(outFolder, "index.html");
        await File.WriteAllTextAsync(index, RenderIndex(chapters), ct);
        return new BookResult(Path.GetFullPath(index), chapters);
    }

    static Notebook? TryLoad(string path)
    {
        try { return Notebook.Load(path); } catch { return null; }
    }

    static string E(string s) => WebUtility.HtmlEncode(s);

    const string Css = """
        body { font: 16px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2330; background: #fff; }
        nav { padding: .6em 1.5em; background: #f3f5f9; border-bottom: 1px solid #dde2ea; font-size: 14px; }
        nav a { color: #2a5db0; text-decoration: none; margin-right: 1em; }
        main { max-width: 980px; margin: 0 auto; padding: 1em 1.5em 4em; }
        pre { overflow-x: auto; font: 13.5px/1.45 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
        .cell { margin: 1.2em 0; }
        .prompt { font: 12px ui-monospace, monospace; color: #8a93a6; }
        pre.code { background: #f6f8fa; border: 1px solid #e3e7ee; border-radius: 6px; padding: .7em .9em; margin: .2em 0; }
        .outputs { border-left: 3px solid #e3e7ee; padding-left: .8em; margin-top: .3em; }
        pre.out { margin: .3em 0; padding: .3em 0; }
        pre.stream-stderr { color: #9a5b00; }
        pre.error { background: #fff0f0; border: 1px solid #f2b8b8; border-radius: 6px; padding: .7em .9em; color: #8b1111; }
        .status { padding: .5em .8em; border-radius: 6px; margin: 1em 0; font-size: 14px; }
        .status.ok { background: #eef8ef; color: #1e6b2a; }
        .status.failed { background: #fff0f0; color: #8b1111; }
        table { border-collapse: collapse; margin: .5em 0; }
        th, td { border: 1px solid #dde2ea; padding: .25em .6em; text-align: left; }
        th { background: #f3f5f9; }
        td.failed { color: #8b1111; } td.ok { color: #1e6b2a; }
        .html { overflow-x: auto; }
        """;

    static string Page(string title, string body, bool withPlotly) => new StringBuilder()
        .Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
        .Append("<title>").Append(E(title)).Append("</title>\n<style>\n").Append(Css).Append("</style>\n")
        .Append(withPlotly ? PlotlyJs.ScriptTag() : "")
        .Append("</head>\n<body>\n").Append(body).Append("</body>\n</html>\n").ToString();

    static string RenderIndex(IReadOnlyList<BookChapter> chapters)
    {
        var sb = new StringBuilder();
        sb.Append("<nav><a href=\"index.html\">Backend Accept Lab</a></nav>\n<main>\n<h1>Backend Accept Lab</h1>\n");
        sb.Append("<p>Every chapter below was executed on this machine: ").Append(E(Environment.OSVersion.VersionString))
          .Append(", ").Append(E(DateTime.Now.ToString("yyyy-MM-dd HH:mm"))).Append(".</p>\n");
        var failed = chapters.Count(c => !c.Succeeded);
        sb.Append("<div class=\"status ").Append(failed == 0 ? "ok" : "failed").Append("\">")
          .Append(failed == 0 ? $"All {chapters.Count} chapters ran." : $"{failed} of {chapters.Count} chapters failed.").Append("</div>\n");
        sb.Append("<table class=\"chapters\">\n<thead><tr><th>Chapter</th><th>Status</th><th>Time</th></tr></thead>\n<tbody>\n");
        foreach (var c in chapters)
        {
            sb.Append("<tr><td><a href=\"").Append(E(c.PageName)).Append("\">").Append(E(c.Title)).Append("</a></td>")
              .Append("<td class=\"").Append(c.Succeeded ? "ok" : "failed").Append("\">").Append(E(c.Status)).Append("</td>")
              .Append("<td>").Append(c.Run != null ? $"{c.Run.Duration.TotalSeconds:0.0} s" : "").Append("</td></tr>\n");
        }
        sb.Append("</tbody>\n</table>\n</main>\n");
        return Page("Backend Accept Lab", sb.ToString(), withPlotly: false);
    }

    static string RenderChapter(BookChapter chapter, Notebook? nb, BookChapter? prev, BookChapter? next)
    {
        var sb = new StringBuilder();
        sb.Append("<nav><a href=\"index.html\">Backend Accept Lab</a>");
        if (prev != null) sb.Append("<a href=\"").Append(E(prev.PageName)).Append("\">← ").Append(E(prev.Title)).Append("</a>");
        if (next != null) sb.Append("<a href=\"").Append(E(next.PageName)).Append("\">").Append(E(next.Title)).Append(" →</a>");
        sb.Append("</nav>\n<main>\n");
        var run = chapter.Run;
        if (chapter.Crash != null)
            sb.Append("<div class=\"status failed\">This chapter could not run: ").Append(E(chapter.Crash)).Append("</div>\n");
        else if (run!.Succeeded)
            sb.Append("<div class=\"status ok\">Ran on this machine in ").Append($"{run.Duration.TotalSeconds:0.0}").Append(" s.</div>\n");
        else
            sb.Append("<div class=\"status failed\">").Append(E(run.FailureMessage ?? $"failed at cell {run.FailedCell}")).Append("</div>\n");
        var hasChart = false;
        if (nb != null)
        {
            int codeIndex = 0;
            foreach (var cell in nb.Cells)
            {
                if (cell.CellType == "markdown")
                {
                    sb.Append("<section class=\"md\">\n").Append(Markdig.Markdown.ToHtml(cell.Source, Markdown)).Append("</section>\n");
                    continue;
                }
                if (!cell.IsCode || string.IsNullOrWhiteSpace(cell.Source)) continue;
                codeIndex++;
                sb.Append("<div class=\"cell\" id=\"cell-").Append(codeIndex).Append("\">\n<div class=\"prompt\">In [")
                  .Append(cell.ExecutionCount?.ToString() ?? " ").Append("]:</div>\n<pre class=\"code\"><code class=\"language-csharp\">")
                  .Append(E(cell.Source)).Append("</code></pre>\n");
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
        sb.Append("</main>\n");
        return Page(chapter.Title, sb.ToString(), hasChart);
    }

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
