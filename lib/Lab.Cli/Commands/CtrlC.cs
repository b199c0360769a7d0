namespace Lab.Cli.Commands;

/// <summary>
/// Ctrl+C (SIGINT) as a cancellation of one command: the command stops what it runs and prints what it has. The lab
/// turns System.CommandLine's own handling off (the REPL and the Jupyter kernel take SIGINT as "stop the cell"), and a
/// .NET process with no handler dies of the signal, printing nothing. Disposing removes the handler.
/// </summary>
sealed class CtrlC : IDisposable
{
    readonly CancellationTokenSource _cts;
    readonly ConsoleCancelEventHandler _handler;

    public CtrlC(CancellationToken outer)
    {
        _cts = CancellationTokenSource.CreateLinkedTokenSource(outer);
        var cts = _cts;
        _handler = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += _handler;
    }

    /// <summary>Cancelled by Ctrl+C or by the outer token.</summary>
    public CancellationToken Token => _cts.Token;

    public void Dispose()
    {
        Console.CancelKeyPress -= _handler;
        _cts.Dispose();
    }
}
