using System.CommandLine;
using Lab.Cli;
using Lab.Cli.Engine;
using Lab.Cli.Book;
using Lab.Cli.Jupyter;
using Lab.Cli.Notebooks;
using Lab.Cli.Repl;
using Spectre.Console;

// The `lab` command: run chapters headless, build the HTML book, or work at a C# prompt with the library loaded.
// SIGTERM (kill, a closed terminal, Jupyter shutting a kernel down) ends .NET through ProcessExit: what the lab started
// (namespaces, nginx children, sysctl and rlimit scopes) is undone then too, not left for the next run's clean-up.
AppDomain.CurrentDomain.ProcessExit += (_, _) => Lab.LabResources.DisposeAll(TimeSpan.FromSeconds(5));
// Measured: `dotnet Lab.Cli.dll repl` died of SIGTERM without raising ProcessExit, so the signal gets its own handler;
// the default action (exit) follows it.
using var onSigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM,
    _ => Lab.LabResources.DisposeAll(TimeSpan.FromSeconds(5)));

var root = new RootCommand("Backend Accept Lab: run the C# chapters on this machine's kernel.");

var timeoutOption = new Option<double?>("--timeout") { Description = "Seconds a cell may run before it is stopped (what it started is disposed). Defaults to 120." };

// lab run
var runTarget = new Argument<string>("notebook") { Description = "A notebook (.ipynb) or a folder: every NN-*.ipynb in it, in order." };
var runOut = new Option<string?>("--out") { Description = "Folder for the executed notebooks. Defaults to artifacts/run/." };
var runRepeat = new Option<int>("--repeat") { Description = "Run each notebook this many times in one session (an instructor re-running the cells), and fail if the process holds more fds or threads after the last run than after the first. Defaults to 1.", DefaultValueFactory = _ => 1 };
var run = new Command("run", "Execute every code cell of a notebook (or of every chapter in a folder) and write the executed copies.");
run.Arguments.Add(runTarget);
run.Options.Add(runOut);
run.Options.Add(timeoutOption);
run.Options.Add(runRepeat);
run.SetAction((parse, ct) => Commands.RunAsync(parse.GetValue(runTarget)!, parse.GetValue(runOut), parse.GetValue(timeoutOption), ct, parse.GetValue(runRepeat)));
root.Subcommands.Add(run);

// lab book
var bookOut = new Option<string?>("--out") { Description = "Folder for the book. Defaults to artifacts/book/." };
var bookNotebooks = new Option<string?>("--notebooks") { Description = "Folder of chapters (NN-*.ipynb). Defaults to notebooks/." };
var book = new Command("book", "Execute every chapter and write a static HTML book (works offline).");
book.Options.Add(bookOut);
book.Options.Add(bookNotebooks);
book.Options.Add(timeoutOption);
book.SetAction((parse, ct) => Commands.BookAsync(parse.GetValue(bookNotebooks), parse.GetValue(bookOut), parse.GetValue(timeoutOption), ct));
root.Subcommands.Add(book);

// lab repl
var repl = new Command("repl", "An interactive C# prompt with the lab's library loaded. Ctrl+C stops the running cell; Ctrl+D or #exit quits.");
repl.SetAction((_, _) => new ReplHost().RunAsync());
root.Subcommands.Add(repl);

// lab doctor
root.Subcommands.Add(Lab.Cli.Doctor.Doctor.CreateCommand());

// lab serve <topology>, lab load <url>
root.Subcommands.Add(Lab.Cli.ServeCommand.Create());
root.Subcommands.Add(Lab.Cli.LoadCommand.Create());
root.Subcommands.Add(Lab.Cli.BenchCommand.Create()); // lab bench [--short] [--rounds N] [--seconds S] [--only TOPOLOGY]
root.Subcommands.Add(Lab.Cli.SoakCommand.Create());
root.Subcommands.Add(Lab.Cli.Export.ExportCommand.Create()); // lab export NN --to cs

// lab jupyter install | uninstall | kernel
var jupyter = new Command("jupyter", "The lab's Jupyter kernel (C#, messaging protocol 5.3): install its kernelspec, or run it.");
var userOption = new Option<bool>("--user") { Description = "Install for this user (~/.local/share/jupyter/kernels). The default when not root." };
var prefixOption = new Option<string?>("--prefix") { Description = "Install under DIR/share/jupyter/kernels (point JUPYTER_PATH at DIR/share/jupyter)." };
var install = new Command("install", $"Write the kernelspec '{KernelSpec.Name}' (\"{KernelSpec.DisplayName}\"). Running it again changes nothing.");
install.Options.Add(userOption);
install.Options.Add(prefixOption);
install.SetAction(parse => JupyterCommands.Install(parse.GetValue(userOption), parse.GetValue(prefixOption)));
var uninstall = new Command("uninstall", $"Remove the kernelspec '{KernelSpec.Name}'.");
uninstall.Options.Add(userOption);
uninstall.Options.Add(prefixOption);
uninstall.SetAction(parse => JupyterCommands.Uninstall(parse.GetValue(userOption), parse.GetValue(prefixOption)));
var connectionFile = new Option<string>("--connection-file", "-f") { Description = "The connection file Jupyter wrote (ports, ip, key).", Required = true };
var kernel = new Command("kernel", "Run the kernel (Jupyter starts this through the kernelspec's argv).");
kernel.Options.Add(connectionFile);
kernel.Options.Add(timeoutOption);
kernel.SetAction((parse, ct) => JupyterCommands.KernelAsync(parse.GetValue(connectionFile)!, parse.GetValue(timeoutOption), ct));
jupyter.Subcommands.Add(install);
jupyter.Subcommands.Add(uninstall);
jupyter.Subcommands.Add(kernel);
root.Subcommands.Add(jupyter);

// Ctrl+C is the commands' own business (the REPL stops a cell, not the process).
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });

namespace Lab.Cli
{
    static class Commands
    {
        static bool _timed;

        /// <summary>The repository's root: the folder above holding Lab.sln (from the current directory, then from this program's own place).</summary>
        public static string RepoRoot()
        {
            foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            {
                for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
                    if (File.Exists(Path.Combine(d.FullName, "Lab.sln"))) return d.FullName;
            }
            return Directory.GetCurrentDirectory();
        }

        static TimeSpan? Seconds(double? s) => s is > 0 ? TimeSpan.FromSeconds(s.Value) : null;

        static string Line(CellProgress p) =>
            $"{p.Notebook}{(p.Runs > 1 ? $"  run {p.Run}/{p.Runs}" : "")}  cell {p.Cell}/{p.Of}  {p.Result.Duration.TotalSeconds,6:0.00} s  {(p.Result.Status == CellStatus.Skipped && p.Result.ErrorValue != null ? "skipped: " + p.Result.ErrorValue : p.Result.Succeeded ? "ok" : "error")}{(p.Again ? " (re-run: a set-up cell run again alone)" : "")}";

        public static async Task<int> RunAsync(string target, string? outDir, double? timeout, CancellationToken ct, int repeat = 1)
        {
            if (repeat is < 1 or > NotebookRunner.MaxRepeat)
            {
                Console.Error.WriteLine($"lab run: --repeat {repeat}: give 1 to {NotebookRunner.MaxRepeat} (runs of each notebook in one session)");
                return 2;
            }
            using var ctrlC = new CtrlC(ct);
            var rootDir = RepoRoot();
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
                    result = await NotebookRunner.RunAsync(path, Seconds(timeout), progress: p =>
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

        public static async Task<int> BookAsync(string? notebooks, string? outDir, double? timeout, CancellationToken ct)
        {
            using var ctrlC = new CtrlC(ct);
            var rootDir = RepoRoot();
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
                            result = await BookBuilder.BuildAsync(notebooks, outDir, Seconds(timeout),
                                (i, n, name) => { current = name; task.Value = i; task.Description = Markup.Escape($"{name} ({i + 1}/{n})"); },
                                p => task.Description = Markup.Escape($"{current} cell {p.Cell}/{p.Of}"), ctrlC.Token);
                            task.Value = count;
                            task.Description = "chapters";
                        });
                }
                else
                {
                    result = await BookBuilder.BuildAsync(notebooks, outDir, Seconds(timeout),
                        (i, n, name) => Console.WriteLine($"[{i + 1}/{n}] {name}"),
                        p => Console.WriteLine("  " + Line(p)), ctrlC.Token);
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
}
