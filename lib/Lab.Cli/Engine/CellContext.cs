namespace Lab.Cli.Engine;

/// <summary>A mime bundle: mime type to content (text/plain, text/html, ...), as Jupyter's display_data "data".</summary>
public sealed class MimeBundle : Dictionary<string, string>
{
    public MimeBundle() : base(StringComparer.Ordinal) { }
    public MimeBundle(IEnumerable<KeyValuePair<string, string>> items) : base(items, StringComparer.Ordinal) { }

    /// <summary>text/plain, or the empty string.</summary>
    public string Text => TryGetValue("text/plain", out var t) ? t : "";

    /// <summary>text/html, or null.</summary>
    public string? Html => TryGetValue("text/html", out var h) ? h : null;
}

/// <summary>
/// What a host tells the engine about one cell, and where the cell's outputs go. Callbacks may be called from any
/// thread (a cell's background threads write too) and after <see cref="NotebookEngine.ExecuteAsync"/> returned
/// (a display handle updated later); hosts that are not thread-safe should lock.
/// </summary>
public sealed class CellContext
{
    /// <summary>The notebook's path; relative <c>#r</c> resolves against its folder. Null: the current directory.</summary>
    public string? NotebookPath { get; init; }

    /// <summary>The cell's number as the reader sees it (the lab uses the code cell's ordinal, which is its execution count in a full run).</summary>
    public int CellNumber { get; init; }

    /// <summary>How long the cell may run before the engine stops it. Null: the engine's <see cref="EngineOptions.DefaultTimeout"/>.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Text the cell wrote to Console.Out.</summary>
    public Action<string>? Stdout { get; init; }

    /// <summary>Text the cell wrote to Console.Error.</summary>
    public Action<string>? Stderr { get; init; }

    /// <summary>A value shown with <c>display(x)</c>: its bundle and display id (Jupyter's display_data with transient.display_id).</summary>
    public Action<MimeBundle, string>? Display { get; init; }

    /// <summary>A shown value replaced with <c>handle.Update(y)</c>: display id and the new bundle (Jupyter's update_display_data).</summary>
    public Action<string, MimeBundle>? UpdateDisplay { get; init; }

    /// <summary>Answers Console.ReadLine/Console.In for the cell (a kernel's input_request): prompt in, line out (null: end of input).</summary>
    public Func<string, string?>? Input { get; init; }

    /// <summary>What errors call the notebook when there is no <see cref="NotebookPath"/> (a Jupyter kernel does not know the file). Null: "repl".</summary>
    public string? Name { get; init; }

    /// <summary>The notebook's file name as errors name it ("02-handshake.ipynb"), else <see cref="Name"/>, else "repl".</summary>
    public string NotebookName => NotebookPath is { Length: > 0 } p ? Path.GetFileName(p) : Name ?? "repl";

    /// <summary>"02-handshake.ipynb, cell 5".</summary>
    public string Label => $"{NotebookName}, cell {CellNumber}";
}

/// <summary>How a cell ended.</summary>
public enum CellStatus
{
    /// <summary>Ran to the end.</summary>
    Ok,
    /// <summary>Did not compile, or threw.</summary>
    Error,
    /// <summary>Ran past its timeout and was stopped.</summary>
    TimedOut,
    /// <summary>Cancelled by the host (Ctrl+C, a kernel interrupt).</summary>
    Cancelled,
    /// <summary>Not code (a <c>#!markdown</c> cell), nothing ran.</summary>
    Skipped,
}

/// <summary>A cell's outcome. Outputs went to the context's callbacks while it ran; this carries the rest.</summary>
public sealed class CellResult
{
    public required CellStatus Status { get; init; }

    /// <summary>The last expression's value as a bundle (Jupyter's execute_result), or null when the cell ends in a statement.</summary>
    public MimeBundle? Value { get; init; }

    /// <summary>The raw value (the REPL writes charts to files from it). Null when there is none.</summary>
    public object? RawValue { get; init; }

    /// <summary>Error name (Jupyter's ename): "CompilationError", "TimeoutError", "CancelledError", or the exception's type name.</summary>
    public string? ErrorName { get; init; }

    /// <summary>One line saying what went wrong and where ("02-handshake.ipynb, cell 5, line 2, col 9: CS0103 ...").</summary>
    public string? ErrorValue { get; init; }

    /// <summary>Further lines: every diagnostic, or the stack mapped to cells (Jupyter's traceback).</summary>
    public IReadOnlyList<string> Traceback { get; init; } = Array.Empty<string>();

    /// <summary>The exception a running cell threw, when it threw one.</summary>
    public Exception? Exception { get; init; }

    /// <summary>What the lab had started in the cell and the engine stopped (timeout, cancel), e.g. "Listener ×1".</summary>
    public IReadOnlyList<string> Stopped { get; init; } = Array.Empty<string>();

    /// <summary>True when the cell's thread did not return after its resources were disposed and was left behind.</summary>
    public bool Abandoned { get; init; }

    public TimeSpan Duration { get; init; }

    public bool Succeeded => Status is CellStatus.Ok or CellStatus.Skipped;
}
