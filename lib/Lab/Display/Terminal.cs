using System.Net;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Lab.Charts;
using Microsoft.AspNetCore.Html;

namespace Lab.Display;

/// <summary>
/// A chapter run as a program (<c>lab export NN --to cs</c>, then <c>dotnet run NN-slug.cs</c>): the notebook's
/// <c>display(x)</c>, <c>display(x).Update(y)</c> and <c>HTML(...)</c>, printed to the terminal with the lab's
/// plain-text formatters (the ones <c>lab repl</c> prints with). A chart is written to an HTML page beside the program
/// (<see cref="ChartsFolder"/>), whose path is printed; a live chart is written once, with its last frame.
/// The exported file opens with <c>using static Lab.Display.Terminal;</c> and calls <see cref="Start"/> first.
/// </summary>
public static partial class Terminal
{
    static int _displays;
    static int _charts;
    static int _cell;
    static string _chapter = "chapter";
    static PosixSignalRegistration? _sigterm;

    /// <summary>Where chart pages go. Defaults to <c>charts/</c> under the current directory; <see cref="Start"/> sets it beside the program.</summary>
    public static string ChartsFolder { get; set; } = Path.Combine(Directory.GetCurrentDirectory(), "charts");

    /// <summary>
    /// Call first. Names the chapter, puts chart pages in <paramref name="chartsFolder"/>, and disposes what the chapter
    /// started (listeners, namespaces, sysctl scopes) when the program ends, as the lab's engine does after a notebook:
    /// normally, on an exception, or on SIGTERM. A failed check or an error ends the program with exit code 1, naming the
    /// cell; a cell that cannot run here (a missing capability) with exit code 3 and the fix.
    /// </summary>
    public static void Start(string chapter, string? chartsFolder = null)
    {
        _chapter = chapter;
        if (chartsFolder != null) ChartsFolder = chartsFolder;
        LabFormatters.RegisterAll();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => LabResources.DisposeAll(TimeSpan.FromSeconds(5));
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => LabResources.DisposeAll(TimeSpan.FromSeconds(5)));
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
        {
            var ex = e.ExceptionObject as Exception;
            while (ex is AggregateException { InnerExceptions.Count: 1 } a) ex = a.InnerException;
            Console.Out.Flush();
            switch (ex)
            {
                case CellSkippedException s:
                    Console.Error.WriteLine($"{_chapter}, cell {_cell}: skipped: {s.Reason}");
                    Console.Error.WriteLine("The cells after it need what it would have made, so the program stops here.");
                    Environment.Exit(3);
                    break;
                case CheckFailedException c:
                    Console.Error.WriteLine($"{_chapter}, cell {_cell}: ✗ {c.Message}");
                    Environment.Exit(1);
                    break;
                default:
                    Console.Error.WriteLine($"{_chapter}, cell {_cell}: {ex}");
                    Environment.Exit(1);
                    break;
            }
        };
    }

    /// <summary>Marks the start of the notebook's code cell <paramref name="number"/> (a line on the terminal; errors name it).</summary>
    public static void Cell(int number)
    {
        _cell = number;
        Console.WriteLine(Console.IsOutputRedirected ? $"── cell {number}" : $"\x1b[90m── cell {number}\x1b[0m");
    }

    /// <summary>Shows <paramref name="value"/> now; keep the handle to replace it: <c>d.Update(y)</c>.</summary>
    public static TerminalDisplay display(object? value, params string[] mimeTypes)
    {
        var d = new TerminalDisplay(Interlocked.Increment(ref _displays));
        d.Update(value);
        return d;
    }

    /// <summary>Raw HTML, as in a notebook; the terminal prints its text.</summary>
    public static IHtmlContent HTML(string html) => LabFormatters.Html(html);

    [GeneratedRegex("<[^>]+>")]
    private static partial Regex Tag();

    /// <summary>What the terminal prints for a value: its text/plain formatting; HTML without its tags.</summary>
    public static string Text(object? value)
    {
        var bundle = LabFormatters.Bundle(value);
        var text = bundle[LabFormatters.TextMime];
        return value is IHtmlContent ? WebUtility.HtmlDecode(Tag().Replace(text, "")) : text;
    }

    /// <summary>Writes <paramref name="chart"/> as a page in <see cref="ChartsFolder"/> (plotly.js beside it, once) and returns its path.</summary>
    internal static string WriteChart(Figure chart, string? path)
    {
        Directory.CreateDirectory(ChartsFolder);
        var plotly = Path.Combine(ChartsFolder, "plotly.min.js");
        if (!File.Exists(plotly))
            File.WriteAllText(plotly, "(function(define, module, exports){\n" + PlotlyJs.Source + "\n}).call(window);\n");
        path ??= Path.Combine(ChartsFolder, $"{_chapter}-chart-{Interlocked.Increment(ref _charts)}.html");
        File.WriteAllText(path, $"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{WebUtility.HtmlEncode(_chapter)}</title>\n" +
            $"<script src=\"plotly.min.js\"></script></head>\n<body>\n{ChartHtml.Fragment(chart)}\n</body></html>\n");
        return path;
    }
}

/// <summary>A display in the terminal: <see cref="Update"/> prints the new value (a live chart: its last frame, as a page).</summary>
public sealed class TerminalDisplay
{
    readonly int _id;
    string? _lastText;
    string? _chartPath;

    internal TerminalDisplay(int id) => _id = id;

    /// <summary>Replaces what this display shows: prints it, unless it is the same text again or a live chart's intermediate frame.</summary>
    public void Update(object? value)
    {
        switch (value)
        {
            case LiveFrame { Last: false }:
                return; // a terminal cannot redraw a chart in place: the last frame is written, once
            case LiveFrame frame:
                Chart(frame.Figure);
                return;
            case Figure figure:
                Chart(figure);
                return;
        }
        var text = Terminal.Text(value);
        if (text == _lastText) return;
        _lastText = text;
        Console.WriteLine(text);
    }

    void Chart(Figure figure)
    {
        var first = _chartPath == null;
        _chartPath = Terminal.WriteChart(figure, _chartPath);
        if (first) Console.WriteLine($"{ChartHtml.Text(figure)}: {_chartPath}");
    }

    public override string ToString() => $"display {_id}";
}
