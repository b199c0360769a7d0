using System.CommandLine;
using Lab.Cli.Engine;
using Lab.Cli.Notebooks;

namespace Lab.Cli.Commands;

/// <summary>
/// <c>lab run NOTEBOOK|FOLDER</c>: executes every code cell in order, prints a line per cell, writes the executed copy
/// to artifacts/run/, and exits non-zero naming the notebook and cell that failed.
/// </summary>
static class RunCommand
{
    static bool _timed;

    public static Command Create()
    {
        var target = new Argument<string>("notebook") { Description = "A notebook (.ipynb) or a folder: every NN-*.ipynb in it, in order." };
        var output = new Option<string?>("--out") { Description = "Folder for the executed notebooks. Defaults to artifacts/run/." };
        var timeout = CellTimeout.Option();
        var repeat = new Option<int>("--repeat") { Description = "Run each notebook this many times in one session (an instructor re-running the cells), and fail if the process holds more fds or threads after the last run than after the first. Defaults to 1.", DefaultValueFactory = _ => 1 };
        var command = new Command("run", "Execute every code cell of a notebook (or of every chapter in a folder) and write the executed copies.")
        {
            target, output, timeout, repeat,
        };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(target)!, parse.GetValue(output), parse.GetValue(timeout), ct, parse.GetValue(repeat)));
        return command;
    }

    /// <summary>One cell's progress line, as run and book print it.</summary>
    public static string Line(CellProgress p) =>
        $"{p.Notebook}{(p.Runs > 1 ? $"  run {p.Run}/{p.Runs}" : "")}  cell {p.Cell}/{p.Of}  {p.Result.Duration.TotalSeconds,6:0.00} s  {(p.Result.Status == CellStatus.Skipped && p.Result.ErrorValue != null ? "skipped: " + p.Result.ErrorValue : p.Result.Succeeded ? "ok" : "error")}{(p.Again ? " (re-run: a set-up cell run again alone)" : "")}";

    public static async Task<int> RunAsync(string target, string? outDir, double? timeout, CancellationToken ct, int repeat = 1)
    {
        if (repeat is < 1 or > NotebookRunner.MaxRepeat)
        {
            Console.Error.WriteLine($"lab run: --repeat {repeat}: give 1 to {NotebookRunner.MaxRepeat} (runs of each notebook in one session)");
            return 2;
        }
        using var ctrlC = new CtrlC(ct);
        var rootDir = Repo.Root();
        outDir = Path.GetFullPath(outDir ?? Path.Combine(rootDir, "artifacts", "run"));
        IReadOnlyList<string> notebooks;
        if (Directory.Exists(target))
        {
            notebooks = NotebookRunner.Chapters(target);
            if (notebooks.Count == 0) { Console.Error.WriteLine($"lab run: no NN-*.ipynb notebooks in {target}"); return 2; }
        }
        else if (File.Exists(target)) notebooks = new[] { target };
        else { Console.Error.WriteLine($"lab run: {target}: no such notebook or folder"); return 2; }

        var failures = new List<string>();
        foreach (var path in notebooks)
        {
            NotebookRun result;
            try
            {
                result = await NotebookRunner.RunAsync(path, CellTimeout.Of(timeout), progress: p =>
                {
                    if (Environment.GetEnvironmentVariable("LAB_TIMING") == "1" && !_timed)
                    {
                        _timed = true;
                        var since = DateTime.Now - System.Diagnostics.Process.GetCurrentProcess().StartTime;
                        Console.WriteLine($"timing: first cell result {since.TotalSeconds:0.00} s after the process started");
                    }
                    Console.WriteLine(Line(p));
                    if (!p.Result.Succeeded) Console.WriteLine("  " + p.Result.ErrorValue);
                }, ct: ctrlC.Token, repeat: repeat);
            }
            catch (OperationCanceledException) { Console.Error.WriteLine("lab run: cancelled"); return 130; }
            catch (Exception e) when (e is FormatException or IOException or System.Text.Json.JsonException)
            {
                failures.Add($"{Path.GetFileName(path)}: cannot read: {e.Message}");
                Console.Error.WriteLine($"lab run: {Path.GetFileName(path)}: cannot read: {e.Message}");
                continue;
            }
            var written = Path.Combine(outDir, Path.GetFileName(path));
            if (Path.GetFullPath(written) == Path.GetFullPath(path))
            {
                Console.Error.WriteLine($"lab run: --out would overwrite the source notebook {path}; choose another folder");
                return 2;
            }
            result.Executed.Save(written);
            Console.WriteLine($"{result.Name}: {(result.Succeeded ? "ok" : "FAILED")} in {result.Duration.TotalSeconds:0.0} s{(result.Runs > 1 ? $" ({result.Runs} runs in one session)" : "")}, wrote {written}");
            if (result.Repeat is { } check) Console.WriteLine($"{result.Name}: {check}{(check.Held ? " (held)" : "")}");
            if (!result.Succeeded) failures.Add(result.FailureMessage!);
        }
        if (failures.Count == 0) return 0;
        foreach (var f in failures) Console.Error.WriteLine("lab run: failed: " + f);
        return 1;
    }
}
