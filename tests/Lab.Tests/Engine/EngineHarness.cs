using System.Collections.Concurrent;
using Lab.Cli.Engine;

namespace Lab.Tests.Engine;

/// <summary>Runs cells on an engine and keeps what they showed, for assertions.</summary>
sealed class EngineHarness : IAsyncDisposable
{
    public NotebookEngine Engine { get; }
    public string NotebookPath { get; }
    public ConcurrentQueue<string> Stdout { get; } = new();
    public ConcurrentQueue<string> Stderr { get; } = new();
    public ConcurrentQueue<(string Id, MimeBundle Bundle)> Displays { get; } = new();
    public ConcurrentQueue<(string Id, MimeBundle Bundle)> Updates { get; } = new();
    int _cell;

    public EngineHarness(string? notebookPath = null, EngineOptions? options = null)
    {
        // A notebook in notebooks/ (it need not exist): chapters' #r "../artifacts/bin/Lab/debug/Lab.dll" resolves from there.
        NotebookPath = notebookPath ?? Path.Combine(RepoRoot.Path, "notebooks", "99-engine-test.ipynb");
        Engine = new NotebookEngine(options);
    }

    public const string LabReference = "#r \"../artifacts/bin/Lab/debug/Lab.dll\"";

    public string Out => string.Concat(Stdout);

    public CellContext Context(TimeSpan? timeout = null, Func<string, string?>? input = null) => new()
    {
        NotebookPath = NotebookPath,
        CellNumber = Interlocked.Increment(ref _cell),
        Timeout = timeout,
        Stdout = Stdout.Enqueue,
        Stderr = Stderr.Enqueue,
        Display = (b, id) => Displays.Enqueue((id, b)),
        UpdateDisplay = (id, b) => Updates.Enqueue((id, b)),
        Input = input,
    };

    public Task<CellResult> Run(string code, TimeSpan? timeout = null, CancellationToken ct = default) =>
        Engine.ExecuteAsync(code, Context(timeout), ct).WaitAsync(TimeSpan.FromSeconds(120));

    public async Task<CellResult> RunOk(string code)
    {
        var r = await Run(code);
        Assert.True(r.Status == CellStatus.Ok, $"cell failed: {r.ErrorValue}\n{string.Join("\n", r.Traceback)}");
        return r;
    }

    public ValueTask DisposeAsync() => Engine.DisposeAsync();
}
