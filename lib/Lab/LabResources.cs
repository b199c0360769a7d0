namespace Lab;

/// <summary>
/// What the lab has started (listeners, connections, servers, samplers, namespaces, sysctl scopes), so a host can
/// stop it. Every lab type that owns an fd, a thread or a change to the machine calls <see cref="Track"/> when
/// created and <see cref="Untrack"/> when disposed. The notebook engine opens a <see cref="CellScope"/> around each
/// cell: when the cell is cancelled or times out it disposes what that cell started; when the cell succeeds what
/// it started lives on for later cells (a listener made in cell 1 is used in cell 3).
/// </summary>
public static class LabResources
{
    static readonly object Gate = new();
    static readonly List<Entry> Live = new();
    static long _nextScope;
    static long _currentScope;

    sealed record Entry(IDisposable Resource, long Scope, string What);

    /// <summary>
    /// A host that never disposes what a session started (the .NET Interactive kernel, `dotnet repl`, a script) still
    /// leaves the machine as it was: when the process exits normally or on SIGTERM, what is still tracked is disposed.
    /// Namespaces outlive their process (`ip netns add` bind-mounts them) and so would a root sysctl's change.
    /// </summary>
    static LabResources() => AppDomain.CurrentDomain.ProcessExit += (_, _) => DisposeAll(TimeSpan.FromSeconds(20));

    /// <summary>Registers a resource the lab started. Cheap; safe from any thread.</summary>
    public static void Track(IDisposable resource, string? what = null)
    {
        lock (Gate) Live.Add(new Entry(resource, Volatile.Read(ref _currentScope), what ?? resource.GetType().Name));
    }

    /// <summary>Removes a resource once it has been disposed by its owner. Unknown resources are ignored.</summary>
    public static void Untrack(IDisposable resource)
    {
        lock (Gate)
        {
            for (int i = Live.Count - 1; i >= 0; i--)
                if (ReferenceEquals(Live[i].Resource, resource)) { Live.RemoveAt(i); return; }
        }
    }

    /// <summary>How many tracked resources are alive, by kind (for tests and the doctor).</summary>
    public static IReadOnlyDictionary<string, int> Count()
    {
        lock (Gate) return Live.GroupBy(e => e.What).ToDictionary(g => g.Key, g => g.Count());
    }

    /// <summary>Begins a scope: resources tracked from now on belong to it until it ends.</summary>
    public static CellScope BeginScope()
    {
        var id = Interlocked.Increment(ref _nextScope);
        var previous = Interlocked.Exchange(ref _currentScope, id);
        return new CellScope(id, previous);
    }

    /// <summary>Disposes every tracked resource (newest first), e.g. when an engine session ends.</summary>
    public static IReadOnlyList<string> DisposeAll(TimeSpan? budget = null) => DisposeWhere(_ => true, budget);

    internal static IReadOnlyList<string> DisposeWhere(Func<long, bool> inScope, TimeSpan? budget)
    {
        List<Entry> victims;
        lock (Gate)
        {
            victims = Live.Where(e => inScope(e.Scope)).ToList();
            foreach (var v in victims) Live.Remove(v);
        }
        victims.Reverse();
        var failures = new List<string>();
        var deadline = DateTime.UtcNow + (budget ?? TimeSpan.FromSeconds(10));
        foreach (var v in victims)
        {
            // Disposal of lab types is bounded by their own stop timeouts; this only guards a whole-scope budget.
            var task = Task.Run(v.Resource.Dispose);
            var left = deadline - DateTime.UtcNow;
            try
            {
                if (left <= TimeSpan.Zero || !task.Wait(left)) failures.Add($"{v.What}: did not stop within the budget");
            }
            catch (AggregateException e) { failures.Add($"{v.What}: {e.InnerException?.Message}"); }
        }
        return failures;
    }

    internal static IReadOnlyList<string> LiveIn(long scope)
    {
        lock (Gate) return Live.Where(e => e.Scope == scope).Select(e => e.What).ToList();
    }

    internal static void EndScope(long id, long previous) => Interlocked.CompareExchange(ref _currentScope, previous, id);
}

/// <summary>A cell's scope: <see cref="DisposeStarted"/> stops what the cell started; <see cref="Dispose"/> just ends it.</summary>
public sealed class CellScope : IDisposable
{
    readonly long _id, _previous;
    internal CellScope(long id, long previous) { _id = id; _previous = previous; }

    /// <summary>Disposes what was tracked in this scope (a cancelled or timed-out cell). Returns what failed to stop.</summary>
    public IReadOnlyList<string> DisposeStarted(TimeSpan? budget = null) => LabResources.DisposeWhere(s => s == _id, budget);

    /// <summary>What this scope started and has not been disposed yet, by kind (e.g. "Listener"), for a host's report.</summary>
    public IReadOnlyList<string> Started() => LabResources.LiveIn(_id);

    /// <summary>Ends the scope; what it started stays alive.</summary>
    public void Dispose() => LabResources.EndScope(_id, _previous);
}
