using System.Diagnostics;
using System.Text;
using Lab.Display;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Scripting;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Scripting;
using Microsoft.CodeAnalysis.Scripting.Hosting;

namespace Lab.Cli.Engine;

/// <summary>
/// Runs C# cells as one chain of Roslyn script submissions sharing state, the way a notebook runs: a variable made in
/// cell 1 is there in cell 3. One engine is one session (one notebook, one kernel, one REPL). Hosts: <c>lab run</c>,
/// <c>lab book</c>, <c>lab repl</c>, and the Jupyter kernel.
/// <para>
/// Each cell runs on a thread of its own inside a <see cref="LabResources"/> scope. When it times out or is
/// cancelled, the engine disposes what the cell started (closing a listener's fd is what returns a blocked
/// accept), waits <see cref="EngineOptions.AbandonAfter"/> for the thread, and otherwise leaves it behind; either
/// way the session goes on from the last cell that finished.
/// </para>
/// Cells run one at a time: <see cref="ExecuteAsync"/> waits for the previous call to end.
/// </summary>
public sealed class NotebookEngine : IAsyncDisposable
{
    /// <summary>
    /// Namespaces every cell has without a using: exactly those of Polyglot Notebooks' C# kernel (its ScriptOptions'
    /// imports, read from the package by a test), so a cell that compiles here compiles there. Anything else, a
    /// chapter's set-up cell imports itself (<c>using System.IO;</c>).
    /// </summary>
    public static readonly IReadOnlyList<string> DefaultImports = new[]
    {
        "System", "System.Text", "System.Collections", "System.Collections.Generic", "System.Threading.Tasks", "System.Linq",
    };

    static readonly string[] DefaultReferenceNames =
    {
        "System.Linq", "System.Linq.Expressions", "System.Net.Primitives", "System.Net.Sockets", "System.Memory",
        "System.Collections", "System.Net.NetworkInformation", "System.ComponentModel.Primitives", "Microsoft.CSharp",
        "System.Text.Json", "System.Diagnostics.Process",
    };

    readonly EngineOptions _options;
    readonly LabGlobals _globals;
    readonly InteractiveAssemblyLoader _loader = new();
    readonly SemaphoreSlim _gate = new(1, 1);
    readonly Task<ScriptState<object>> _root;
    readonly Dictionary<string, (string Notebook, int Cell)> _cellFiles = new(StringComparer.Ordinal);
    readonly List<CellScope> _scopes = new();
    readonly List<string> _history = new();
    ScriptState<object>? _state;
    int _submission;
    int _plotlyEmitted;
    volatile CellSink? _running;
    bool _disposed;

    public NotebookEngine(EngineOptions? options = null)
    {
        _options = options ?? new EngineOptions();
        Plotly = _options.Plotly;
        ChartHtml.HostAddsPlotlyJs = true; // this engine puts plotly.js where its PlotlyInclusion says, not the formatter
        Assemblies.Install();
        ConsoleRouter.Install();
        _globals = new LabGlobals(this);
        // Roslyn's first compilation costs ~1-2 s of JIT; start it now so it overlaps the host's own start-up.
        _root = Task.Run(CreateRootAsync);
        _ = Task.Run(WarmUp);
    }

    /// <summary>Where plotly.js goes in chart outputs from now on (see <see cref="PlotlyInclusion"/>).</summary>
    public PlotlyInclusion Plotly { get; set; }

    /// <summary>Makes the next chart output carry plotly.js again (a front end that reloaded the page).</summary>
    public void ResetPlotlySession() => Interlocked.Exchange(ref _plotlyEmitted, 0);

    /// <summary>The code of cells that ran to the end, in order (completion and inspection read them).</summary>
    public IReadOnlyList<string> History { get { lock (_history) return _history.ToList(); } }

    /// <summary>The engine's globals (display, HTML), for hosts that want to show a value the way a cell would.</summary>
    public LabGlobals Globals => _globals;

    /// <summary>Completes when Roslyn is loaded and the session's first (empty) submission has run.</summary>
    public Task WarmUpAsync() => _root;

    internal CellSink? RunningSink => _running;

    /// <summary>Namespaces every cell imports (defaults and the options' own).</summary>
    public IReadOnlyList<string> Imports => DefaultImports.Concat(_options.Imports).Distinct().ToList();

    /// <summary>The last submission's compilation: what code can see now (completion builds on its references).</summary>
    internal Compilation LastCompilation() => (_state ?? _root.GetAwaiter().GetResult()).Script.GetCompilation();

    CodeIntelligence? _intelligence;
    CodeIntelligence Intelligence => LazyInitializer.EnsureInitialized(ref _intelligence, () => new CodeIntelligence(this));

    /// <summary>
    /// Completions at <paramref name="cursor"/> (an offset into <paramref name="code"/>, the cell being edited), seeing
    /// everything earlier cells declared. Each replaces code[Start..End). Roslyn's IDE completion (keywords, members
    /// after a dot, locals, types in the imported namespaces).
    /// </summary>
    public async Task<IReadOnlyList<Completion>> CompleteAsync(string code, int cursor, CancellationToken ct = default)
    {
        await _root.ConfigureAwait(false);
        return await Intelligence.CompleteAsync(code, cursor, ct).ConfigureAwait(false);
    }

    /// <summary>The symbol at <paramref name="cursor"/>: its signature and doc comment summary; null when there is none.</summary>
    public async Task<Inspection?> InspectAsync(string code, int cursor, CancellationToken ct = default)
    {
        await _root.ConfigureAwait(false);
        return await Intelligence.InspectAsync(code, cursor, ct).ConfigureAwait(false);
    }

    async Task<ScriptState<object>> CreateRootAsync()
    {
        var opts = BaseOptions(Directory.GetCurrentDirectory(), "session");
        var prelude = new StringBuilder();
        foreach (var r in _options.References) prelude.Append("#r \"").Append(r.Replace("\\", "\\\\")).Append("\"\n");
        var script = CSharpScript.Create(prelude.ToString(), opts, typeof(LabGlobals), _loader);
        var diags = script.Compile();
        if (diags.Any(d => d.Severity == DiagnosticSeverity.Error))
            throw new InvalidOperationException("the engine's start-up references failed: " + string.Join("; ", diags.Select(d => d.ToString())));
        return await script.RunAsync(_globals);
    }

    void WarmUp()
    {
        try
        {
            var s = CSharpScript.Create("var xs = new List<int> { 1, 2 }.Select(i => i * 2).ToList(); Console.WriteLine($\"{xs.Count}\"); xs",
                BaseOptions(Directory.GetCurrentDirectory(), "warmup"), typeof(LabGlobals), _loader);
            s.Compile();
            LabFormatters.Bundle(new[] { new { A = 1 } });
            SyntaxFactory.IsCompleteSubmission(CSharpSyntaxTree.ParseText("1", ParseOptions));
        }
        catch { /* warming is best effort */ }
    }

    static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest, kind: SourceCodeKind.Script);

    // One reference for every cell of every session. AddReferences(Assembly) makes a new reference each call, and each
    // maps the DLL anew: a chain of submissions keeps every earlier one alive, so every cell held one more open fd
    // (lab run --repeat 3 counted Microsoft.AspNetCore.Html.Abstractions.dll ×6 after 6 more cells).
    static readonly MetadataReference HtmlReference = MetadataReference.CreateFromFile(typeof(Microsoft.AspNetCore.Html.IHtmlContent).Assembly.Location);

    ScriptOptions BaseOptions(string baseDirectory, string fileName) =>
        ScriptOptions.Default
            .WithFilePath(Path.Combine(baseDirectory, fileName))
            .WithFileEncoding(Encoding.UTF8)
            .WithEmitDebugInformation(true)
            .WithAllowUnsafe(true)
            .WithLanguageVersion(LanguageVersion.Latest)
            .WithMetadataResolver(new NotebookReferenceResolver(baseDirectory))
            .WithSourceResolver(ScriptSourceResolver.Default.WithBaseDirectory(baseDirectory))
            .AddReferences(DefaultReferenceNames)
            .AddReferences(HtmlReference)
            .AddImports(DefaultImports)
            .AddImports(_options.Imports);

    /// <summary>True when the code is a whole submission (no open brace, string or statement): a REPL's "continue?" test.</summary>
    public static bool IsComplete(string code)
    {
        var src = CellSource.Parse(code);
        if (src.IsMarkdown || src.Error != null) return true;
        if (string.IsNullOrWhiteSpace(src.Code)) return true;
        return SyntaxFactory.IsCompleteSubmission(CSharpSyntaxTree.ParseText(src.Code, ParseOptions));
    }

    /// <summary>
    /// Runs one cell. Outputs stream to <paramref name="ctx"/>'s callbacks while it runs; the result carries the last
    /// expression's value and any error. Never throws for the cell's own failures (compile error, exception, timeout,
    /// cancellation): those are results. The engine stays usable after each.
    /// </summary>
    public async Task<CellResult> ExecuteAsync(string code, CellContext ctx, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try { await _gate.WaitAsync(ct).ConfigureAwait(false); }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return new CellResult
            {
                Status = CellStatus.Cancelled, ErrorName = "CancelledError",
                ErrorValue = $"{ctx.Label} was cancelled while the previous cell was still running",
            };
        }
        var clock = Stopwatch.StartNew();
        try
        {
            // Something since the last cell may have reset Console.In/Out/Error (see ConsoleRouter): route them again.
            ConsoleRouter.Install();
            var src = CellSource.Parse(code);
            if (src.IsMarkdown) return new CellResult { Status = CellStatus.Skipped, Duration = clock.Elapsed };
            if (src.Error != null) return Fail("CompilationError", $"{ctx.Label}, {src.Error}", clock);

            ScriptState<object> previous;
            try { previous = _state ?? await _root.ConfigureAwait(false); }
            catch (Exception e) { return Fail("EngineError", $"{ctx.Label}: the engine could not start: {e.Message}", clock, e); }

            // Compile off the caller's thread; a compile error leaves the session where it was.
            var submission = Interlocked.Increment(ref _submission);
            var dir = ctx.NotebookPath is { Length: > 0 } p ? Path.GetDirectoryName(Path.GetFullPath(p))! : Directory.GetCurrentDirectory();
            var cellFile = Path.Combine(dir, $"{ctx.NotebookName}#{submission}");
            lock (_cellFiles) _cellFiles[cellFile] = (ctx.NotebookName, ctx.CellNumber);
            var script = previous.Script.ContinueWith(src.Code, BaseOptions(dir, Path.GetFileName(cellFile)));
            var (diagnostics, hasValue) = await Task.Run(() => Compile(script, ct), ct).ConfigureAwait(false);
            var errors = diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
            if (errors.Count > 0)
            {
                var lines = errors.Select(d => DescribeDiagnostic(ctx, d)).ToList();
                return new CellResult
                {
                    Status = CellStatus.Error, ErrorName = "CompilationError", ErrorValue = lines[0],
                    Traceback = lines, Duration = clock.Elapsed,
                };
            }
            return await RunAsync(script, previous, src.Code, hasValue, ctx, clock, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return new CellResult
            {
                Status = CellStatus.Cancelled, ErrorName = "CancelledError", Duration = clock.Elapsed,
                ErrorValue = $"{ctx.Label} was cancelled before it ran",
            };
        }
        finally
        {
            _gate.Release();
        }
    }

    static (IReadOnlyList<Diagnostic>, bool) Compile(Script<object> script, CancellationToken ct)
    {
        var diags = script.Compile(ct);
        if (diags.Any(d => d.Severity == DiagnosticSeverity.Error)) return (diags, false);
        var compilation = script.GetCompilation();
        var tree = compilation.SyntaxTrees.Last();
        var root = (CompilationUnitSyntax)tree.GetRoot(ct);
        if (root.Members.LastOrDefault() is GlobalStatementSyntax { Statement: ExpressionStatementSyntax { SemicolonToken.IsMissing: true } expr })
        {
            var type = compilation.GetSemanticModel(tree).GetTypeInfo(expr.Expression, ct).Type;
            return (diags, type is not null && type.SpecialType != SpecialType.System_Void);
        }
        return (diags, false);
    }

    async Task<CellResult> RunAsync(Script<object> script, ScriptState<object> previous, string code, bool hasValue,
        CellContext ctx, Stopwatch clock, CancellationToken ct)
    {
        var timeout = ctx.Timeout ?? _options.DefaultTimeout;
        var sink = new CellSink(this, ctx);
        var done = new TaskCompletionSource<ScriptState<object>>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource();
        var scope = LabResources.BeginScope();
        _running = sink;
        // A thread of its own: a cell blocked in a syscall (accept, read) holds this thread, not the engine's.
        var thread = new Thread(() =>
        {
            CellSink.Current.Value = sink;
            try
            {
                script.RunFromAsync(previous, _ => true, stop.Token).ContinueWith(t =>
                {
                    if (t.IsCanceled) done.TrySetCanceled();
                    else if (t.IsFaulted) done.TrySetException(t.Exception!.InnerExceptions);
                    else done.TrySetResult(t.Result);
                }, TaskContinuationOptions.ExecuteSynchronously);
            }
            catch (Exception e) { done.TrySetException(e); }
        })
        { IsBackground = true, Name = $"lab cell: {ctx.Label}" };
        thread.Start();

        CellStatus stoppedAs;
        try
        {
            var state = await done.Task.WaitAsync(timeout, ct).ConfigureAwait(false);
            sink.Closed = true;
            _running = null;
            scope.Dispose();
            lock (_scopes) _scopes.Add(scope);
            _state = state;
            if (state.Exception != null) return RuntimeError(ctx, state.Exception, clock);
            lock (_history) _history.Add(code);
            if (!hasValue) return new CellResult { Status = CellStatus.Ok, Duration = clock.Elapsed };
            var value = state.ReturnValue;
            return new CellResult { Status = CellStatus.Ok, Value = Format(value), RawValue = value, Duration = clock.Elapsed };
        }
        catch (TimeoutException) { stoppedAs = CellStatus.TimedOut; }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { stoppedAs = CellStatus.Cancelled; }
        catch (Exception e)
        {
            // The script machinery itself failed (not the cell's code, whose exceptions land in state.Exception).
            sink.Closed = true; _running = null; scope.Dispose();
            return RuntimeError(ctx, e, clock);
        }

        // Timed out or cancelled: stop what the cell started, then give its thread a bounded time to return.
        var ranFor = clock.Elapsed;
        stop.Cancel();
        var started = scope.Started();
        var failures = scope.DisposeStarted(_options.DisposeBudget);
        scope.Dispose();
        bool returned;
        try { await done.Task.WaitAsync(_options.AbandonAfter).ConfigureAwait(false); returned = true; }
        catch (TimeoutException) { returned = false; }
        catch { returned = true; }
        sink.Closed = true;
        _running = null;

        var stopped = started.GroupBy(s => s).Select(g => $"{g.Key} ×{g.Count()}").ToList();
        var what = stoppedAs == CellStatus.TimedOut ? $"timed out after {Seconds(timeout)}" : $"was cancelled after {Seconds(ranFor)}";
        var message = $"{ctx.Label} {what}; stopped: {(stopped.Count == 0 ? "nothing the lab tracks" : string.Join(", ", stopped))}";
        var lines = new List<string> { message };
        lines.AddRange(failures.Select(f => "  did not stop: " + f));
        if (!returned)
            lines.Add($"  the cell's thread did not return within {Seconds(_options.AbandonAfter)} after that and was abandoned (it may still be running); the session goes on from the previous cell");
        return new CellResult
        {
            Status = stoppedAs, ErrorName = stoppedAs == CellStatus.TimedOut ? "TimeoutError" : "CancelledError",
            ErrorValue = message, Traceback = lines, Stopped = stopped, Abandoned = !returned, Duration = clock.Elapsed,
        };
    }

    static string Seconds(TimeSpan t) => t.TotalSeconds >= 10 || t.TotalSeconds == Math.Floor(t.TotalSeconds)
        ? $"{t.TotalSeconds:0} s" : $"{t.TotalSeconds:0.0} s";

    static CellResult Fail(string name, string message, Stopwatch clock, Exception? e = null) => new()
    {
        Status = CellStatus.Error, ErrorName = name, ErrorValue = message, Traceback = new[] { message },
        Duration = clock.Elapsed, Exception = e,
    };

    static string DescribeDiagnostic(CellContext ctx, Diagnostic d)
    {
        var span = d.Location.GetLineSpan();
        var where = d.Location.IsInSource ? $", line {span.StartLinePosition.Line + 1}, col {span.StartLinePosition.Character + 1}" : "";
        return $"{ctx.Label}{where}: {d.Id} {d.GetMessage(System.Globalization.CultureInfo.InvariantCulture)}";
    }

    CellResult RuntimeError(CellContext ctx, Exception e, Stopwatch clock)
    {
        while (e is System.Reflection.TargetInvocationException { InnerException: { } inner }) e = inner;
        if (e is AggregateException { InnerExceptions.Count: 1 } agg) e = agg.InnerExceptions[0];
        if (e is Lab.CellSkippedException skip)
        {
            // Not a failure: the cell needs something this machine lacks (a capability), and says what and how to fix it.
            var text = $"Skipped: {skip.Reason}\n" + (skip.WouldShow is { } w ? $"Where it can run, this cell shows {w}.\n" : "");
            if (ctx.Stdout != null) ctx.Stdout(text);
            return new CellResult { Status = CellStatus.Skipped, ErrorValue = skip.Reason, Duration = clock.Elapsed };
        }
        var frames = MapFrames(e);
        var first = frames.FirstOrDefault(f => f.Cell != null);
        var where = first.Cell is { } c && c.Notebook == ctx.NotebookName && c.Cell == ctx.CellNumber
            ? $"{ctx.Label}, line {first.Line}"
            : first.Cell is { } other ? $"{ctx.Label} (thrown in {other.Notebook}, cell {other.Cell}, line {first.Line})" : ctx.Label;
        var message = $"{where}: {e.GetType().Name}: {e.Message}";
        var lines = new List<string> { message };
        foreach (var f in frames) lines.Add("   " + f.Text);
        if (e.InnerException != null) lines.Add($" ---> {e.InnerException.GetType().Name}: {e.InnerException.Message}");
        return new CellResult
        {
            Status = CellStatus.Error, ErrorName = e.GetType().Name, ErrorValue = message, Traceback = lines,
            Exception = e, Duration = clock.Elapsed,
        };
    }

    readonly record struct Frame(string Text, (string Notebook, int Cell)? Cell, int Line);

    List<Frame> MapFrames(Exception e)
    {
        var result = new List<Frame>();
        var trace = new StackTrace(e, fNeedFileInfo: true);
        foreach (var f in trace.GetFrames())
        {
            var method = f.GetMethod();
            var file = f.GetFileName();
            (string, int)? cell = null;
            if (file != null) lock (_cellFiles) if (_cellFiles.TryGetValue(file, out var c)) cell = c;
            var declaring = method?.DeclaringType;
            var isScript = declaring?.Assembly.IsDynamic == true || declaring?.Assembly.Location is "" || cell != null;
            if (cell is { } k)
            {
                var name = ScriptMethodName(method);
                result.Add(new Frame($"at {name}in {k.Item1}, cell {k.Item2}, line {f.GetFileLineNumber()}", k, f.GetFileLineNumber()));
            }
            else if (!isScript && declaring != null && declaring.Namespace?.StartsWith("Microsoft.CodeAnalysis.Scripting", StringComparison.Ordinal) != true)
            {
                var where = file != null ? $" in {file}:line {f.GetFileLineNumber()}" : "";
                result.Add(new Frame($"at {declaring.FullName}.{method!.Name}{where}", null, 0));
            }
        }
        return result;
    }

    static string ScriptMethodName(System.Reflection.MethodBase? m)
    {
        if (m == null) return "";
        var name = m.Name;
        var type = m.DeclaringType;
        // Submission#3.<<Initialize>>d__0.MoveNext: the cell's top level. Submission#3.<F>d__1.MoveNext: an async local function F.
        if (type != null && type.Name.StartsWith('<') && name == "MoveNext") name = type.Name[1..type.Name.IndexOf('>')];
        if (name.Contains("Initialize", StringComparison.Ordinal)) return "";
        return name.TrimStart('<') + " ";
    }

    /// <summary>Formats a value as the engine shows it: a mime bundle, with plotly.js placed per <see cref="Plotly"/>.</summary>
    public MimeBundle Format(object? value, IReadOnlyCollection<string>? mimeTypes = null)
    {
        MimeBundle bundle;
        try
        {
            // Raw HTML (HTML("...")) is shown as written. The Formatting library's display string for an IHtmlContent
            // comes back empty here (measured: HTML("<b>x</b>") gave "" for text/html), so write it out directly.
            if (value is Microsoft.AspNetCore.Html.IHtmlContent raw)
            {
                using var w = new StringWriter();
                raw.WriteTo(w, System.Text.Encodings.Web.HtmlEncoder.Default);
                bundle = new MimeBundle { ["text/html"] = w.ToString(), ["text/plain"] = w.ToString() };
            }
            else bundle = new MimeBundle(LabFormatters.Bundle(value));
        }
        catch (Exception e)
        {
            bundle = new MimeBundle { ["text/plain"] = $"{value?.GetType().Name}: formatting failed: {e.GetType().Name}: {e.Message}" };
        }
        if (mimeTypes is { Count: > 0 })
        {
            foreach (var k in bundle.Keys.Where(k => !mimeTypes.Contains(k)).ToList()) bundle.Remove(k);
            if (bundle.Count == 0) bundle["text/plain"] = LabFormatters.Bundle(value)["text/plain"];
        }
        if (bundle.Html is { } html && ChartHtml.ContainsChart(html))
        {
            var include = Plotly switch
            {
                PlotlyInclusion.EveryChart => true,
                PlotlyInclusion.FirstChartInSession => Interlocked.Exchange(ref _plotlyEmitted, 1) == 0,
                _ => false,
            };
            if (include) bundle["text/html"] = ChartHtml.WithPlotlyJs(html);
        }
        return bundle;
    }

    internal DisplayHandle Display(object? value, string[] mimeTypes)
    {
        var origin = CellSink.Current.Value;
        var target = origin?.Live ?? origin ?? _running;
        var ctx = target?.Context ?? new CellContext();
        var handle = new DisplayHandle(this, ctx, "lab-" + Guid.NewGuid().ToString("N"), mimeTypes);
        var bundle = Format(value, mimeTypes);
        if (ctx.Display != null) ctx.Display(bundle, handle.DisplayId);
        else Stray("stdout", bundle.Text + "\n");
        return handle;
    }

    internal void Stray(string stream, string text)
    {
        if (_options.StrayOutput != null) _options.StrayOutput(stream, text);
        else ConsoleRouter.RealError.Write(text);
    }

    /// <summary>Stops what the session's cells started (newest first) and ends the session. Idempotent.</summary>
    public ValueTask DisposeAsync()
    {
        if (_disposed) return ValueTask.CompletedTask;
        _disposed = true;
        List<CellScope> scopes;
        lock (_scopes) { scopes = _scopes.ToList(); _scopes.Clear(); }
        scopes.Reverse();
        foreach (var s in scopes) s.DisposeStarted(_options.DisposeBudget);
        _loader.Dispose();
        return ValueTask.CompletedTask;
    }
}
