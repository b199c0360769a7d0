using System.Text;
using Lab.Cli.Engine;
using Lab.Cli.Highlight;
using Lab.Display;

namespace Lab.Cli.Repl;

/// <summary>
/// <c>lab repl</c>: C# at a prompt, in one engine session with Lab.dll already referenced. A submission continues
/// over lines until it is complete (an open brace waits for its close). Values print as text (records as tables);
/// a chart is written to an HTML page whose path is printed. Ctrl+C stops the running cell (what it started is
/// disposed); Ctrl+D or #exit quits. With standard input redirected it reads plain lines and prints no prompts.
/// </summary>
public sealed class ReplHost
{
    readonly TextWriter _out = ConsoleRouter.RealOut;
    readonly TextWriter _err = ConsoleRouter.RealError;
    int _charts;

    public async Task<int> RunAsync()
    {
        var root = Repo.Root();
        var lab = Path.Combine(root, "artifacts", "bin", "Lab", "debug", "Lab.dll");
        if (!File.Exists(lab)) lab = typeof(LabInfo).Assembly.Location;
        var chartsDir = Path.Combine(root, "artifacts", "repl");
        var interactive = !Console.IsInputRedirected;

        ConsoleRouter.Install();
        // A terminal session is typed, not a chapter that must also run in Polyglot: it gets the namespaces cells
        // most often need on top of the kernel's six (a notebook's set-up cell writes these itself).
        var imports = new List<string> { "Lab", "Lab.Display", "System.IO", "System.Threading", "System.Net", "System.Net.Sockets", "System.Diagnostics" };
        await using var engine = new NotebookEngine(new EngineOptions
        {
            References = new[] { lab },
            Imports = imports.ToArray(),
            Plotly = PlotlyInclusion.EveryChart,
            DefaultTimeout = Timeout.InfiniteTimeSpan,
            StrayOutput = (_, text) => ConsoleRouter.RealError.Write(text),
        });
        // Input is coloured as typed, like the book's code, unless the terminal cannot or the reader asked not to
        // (NO_COLOR, https://no-color.org).
        var colour = interactive && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null or ""
            && Environment.GetEnvironmentVariable("TERM") is not ("dumb" or null or "");
        using var highlighter = colour ? new CSharpHighlighter(new[] { lab }) : null;
        var editor = interactive ? new LineEditor(engine, HistoryPath(), highlighter, imports) : null;
        if (interactive)
            _out.WriteLine("lab repl: C# with the lab's library loaded. Submit with Enter; an incomplete line continues. Ctrl+C stops a running cell; Ctrl+D or #exit quits.");

        CancellationTokenSource? running = null;
        var atPrompt = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            var r = running;
            if (r != null) r.Cancel();
        };

        int cell = 0;
        while (true)
        {
            var buffer = new StringBuilder();
            bool eof = false;
            while (true)
            {
                var prompt = buffer.Length == 0 ? "> " : ". ";
                var line = editor != null ? editor.ReadLine(prompt, buffer.ToString()) : Console.In.ReadLine();
                if (line == null) { eof = true; break; }
                if (buffer.Length == 0 && line.Trim() is "#exit" or "#quit") { eof = true; break; }
                if (buffer.Length == 0 && string.IsNullOrWhiteSpace(line)) continue;
                buffer.Append(line).Append('\n');
                if (NotebookEngine.IsComplete(buffer.ToString())) break;
            }
            if (eof && buffer.Length == 0) break;
            var code = buffer.ToString();
            editor?.AddHistory(code.TrimEnd('\n'));
            if (highlighter != null) imports.AddRange(CSharpHighlighter.UsingsIn(code)); // later lines colour the types it brought
            cell++;
            running = new CancellationTokenSource();
            var ctx = new CellContext
            {
                NotebookPath = Path.Combine(Directory.GetCurrentDirectory(), "repl"),
                CellNumber = cell,
                Stdout = t => _out.Write(t),
                Stderr = t => _err.Write(t),
                Display = (b, _) => Show(b, chartsDir),
                UpdateDisplay = (_, b) => Show(b, chartsDir),
                // The real stdin: Console.In inside a cell is the router, which would call this again.
                Input = p => { _out.Write(p); return ConsoleRouter.RealIn.ReadLine(); },
            };
            var result = await engine.ExecuteAsync(code, ctx, running.Token);
            running.Dispose();
            running = null;
            if (result.Value != null) Show(result.Value, chartsDir);
            if (!result.Succeeded)
            {
                _err.WriteLine(result.ErrorValue);
                foreach (var l in result.Traceback.Skip(1)) _err.WriteLine(l);
            }
            _out.Flush();
            if (eof) break;
        }
        return 0;
    }

    void Show(MimeBundle b, string chartsDir)
    {
        if (b.Html is { } html && ChartHtml.ContainsChart(html))
        {
            Directory.CreateDirectory(chartsDir);
            var path = Path.Combine(chartsDir, $"chart-{Environment.ProcessId}-{Interlocked.Increment(ref _charts)}.html");
            File.WriteAllText(path, $"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>lab chart</title></head><body>\n{html}\n</body></html>\n");
            _out.WriteLine($"{b.Text}: {path}");
            return;
        }
        _out.WriteLine(b.Text);
    }

    static string? HistoryPath()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return string.IsNullOrEmpty(home) ? null : Path.Combine(home, ".lab_repl_history");
    }
}
