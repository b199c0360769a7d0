namespace Lab.Load;

/// <summary>
/// Clients whose connections reach the server in a fixed order: one connection each, open loop at its own rate,
/// each started only once the server has accepted the previous one. With a round-robin dispatcher the order decides
/// which worker gets which client (chapters 08 and 09).
/// </summary>
public static class InOrder
{
    /// <summary>
    /// For each of <paramref name="clients"/> (a request and its rate in requests/s, 0 &lt; rate ≤ 10000) starts a
    /// <see cref="LoadGenerator"/> with one connection to <paramref name="target"/> for <paramref name="duration"/>
    /// (0.5 to 20 s), in order, waiting (at most 2 s each) until <paramref name="accepted"/> has grown by one before the
    /// next; then waits for all (bounded) and returns their results in the same order. A client that fails, or a
    /// connection not accepted in time, throws once every client is stopped.
    /// </summary>
    public static IReadOnlyList<LoadResult> Run(string target, IReadOnlyList<(RequestMix Request, double PerSecond)> clients, TimeSpan duration, Func<long> accepted)
    {
        ArgumentNullException.ThrowIfNull(clients);
        ArgumentNullException.ThrowIfNull(accepted);
        if (clients.Count is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(clients), clients.Count, "Give 1 to 64 clients.");
        if (duration < TimeSpan.FromSeconds(0.5) || duration > TimeSpan.FromSeconds(20)) throw new ArgumentOutOfRangeException(nameof(duration), duration, "Run for 0.5 to 20 s.");
        if (clients.FirstOrDefault(c => c.PerSecond is not (> 0 and <= 10_000)) is { Request: not null } bad)
            throw new ArgumentOutOfRangeException(nameof(clients), bad.PerSecond, $"{bad.Request.Path} at {bad.PerSecond}/s: give 0 < rate ≤ 10000.");
        using var cancel = new CancellationTokenSource();
        var runs = new List<Task<LoadResult>>();
        try
        {
            long before = accepted();
            foreach (var (request, perSecond) in clients)
            {
                var options = new LoadOptions { Target = target, Connections = 1, Threads = 1, Rate = perSecond, Duration = duration, Mix = [request] };
                runs.Add(LoadGenerator.RunAsync(options, ct: cancel.Token));
                var until = DateTime.UtcNow + TimeSpan.FromSeconds(2);
                while (accepted() < before + runs.Count && DateTime.UtcNow < until && !runs[^1].IsCompleted) Thread.Sleep(1);
                if (accepted() < before + runs.Count)
                    throw new InvalidOperationException($"The server did not accept client {runs.Count - 1} within 2 s" +
                        (runs[^1].Exception is { } e ? $": {e.InnerException?.Message}" : "."));
            }
            if (!Task.WaitAll(runs.ToArray(), duration + TimeSpan.FromSeconds(20)))
                throw new TimeoutException($"The clients did not finish within {(duration + TimeSpan.FromSeconds(20)).TotalSeconds:0} s.");
            return runs.Select(r => r.Result).ToList();
        }
        finally
        {
            cancel.Cancel();
            try { Task.WaitAll(runs.ToArray(), TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        }
    }
}
