using System.CommandLine;
using Lab.Cli.Book;
using Lab.Cli.Notebooks;
using Spectre.Console;

namespace Lab.Cli.Commands;

/// <summary><c>lab book</c>: executes every chapter into a static HTML book at artifacts/book/index.html (works offline).</summary>
static class BookCommand
{
    public static Command Create()
    {
        var output = new Option<string?>("--out") { Description = "Folder for the book. Defaults to artifacts/book/." };
        var notebooks = new Option<string?>("--notebooks") { Description = "Folder of chapters (NN-*.ipynb). Defaults to notebooks/." };
        var timeout = CellTimeout.Option();
        var command = new Command("book", "Execute every chapter and write a static HTML book (works offline).")
        {
            output, notebooks, timeout,
        };
        command.SetAction((parse, ct) => BookAsync(parse.GetValue(notebooks), parse.GetValue(output), parse.GetValue(timeout), ct));
        return command;
    }

    public static async Task<int> BookAsync(string? notebooks, string? outDir, double? timeout, CancellationToken ct)
    {
        using var ctrlC = new CtrlC(ct);
        var rootDir = Repo.Root();
        notebooks = Path.GetFullPath(notebooks ?? Path.Combine(rootDir, "notebooks"));
        outDir = Path.GetFullPath(outDir ?? Path.Combine(rootDir, "artifacts", "book"));
        if (!Directory.Exists(notebooks)) { Console.Error.WriteLine($"lab book: no folder {notebooks}"); return 2; }
        var count = NotebookRunner.Chapters(notebooks).Count;
        if (count == 0) Console.WriteLine($"lab book: no chapters (NN-*.ipynb) in {notebooks} yet; writing an empty book");

        BookResult result;
        try
        {
            var interactive = !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
            if (interactive && count > 0)
            {
                result = null!;
                await AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                    .StartAsync(async pctx =>
                    {
                        var task = pctx.AddTask("chapters", maxValue: count);
                        string current = "";
                        result = await BookBuilder.BuildAsync(notebooks, outDir, CellTimeout.Of(timeout),
                            (i, n, name) => { current = name; task.Value = i; task.Description = Markup.Escape($"{name} ({i + 1}/{n})"); },
                            p => task.Description = Markup.Escape($"{current} cell {p.Cell}/{p.Of}"), ctrlC.Token);
                        task.Value = count;
                        task.Description = "chapters";
                    });
            }
            else
            {
                result = await BookBuilder.BuildAsync(notebooks, outDir, CellTimeout.Of(timeout),
                    (i, n, name) => Console.WriteLine($"[{i + 1}/{n}] {name}"),
                    p => Console.WriteLine("  " + RunCommand.Line(p)), ctrlC.Token);
            }
        }
        catch (OperationCanceledException) { Console.Error.WriteLine("lab book: cancelled"); return 130; }

        foreach (var c in result.Chapters)
            Console.WriteLine($"{Path.GetFileName(c.SourcePath)}: {c.Status}{(c.Run != null ? $" ({c.Run.Duration.TotalSeconds:0.0} s)" : "")}");
        Console.WriteLine($"book: {result.IndexPath}");
        if (result.Succeeded) return 0;
        foreach (var c in result.Chapters.Where(c => !c.Succeeded))
            Console.Error.WriteLine("lab book: failed: " + (c.Run?.FailureMessage ?? $"{Path.GetFileName(c.SourcePath)}: {c.Crash}"));
        return 1;
    }
}
