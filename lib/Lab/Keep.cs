namespace Lab;

/// <summary>
/// One live object per name, for cells an instructor re-runs: <c>var server = Keep.One("server", new RoleSplit(3, 5));</c>
/// disposes the server the previous run of the cell made before keeping the new one. (A re-run cell's <c>var</c> is a
/// new variable that hides the old one, so nothing else would stop the old server.)
/// </summary>
public static class Keep
{
    static readonly Dictionary<string, IDisposable> Kept = new(StringComparer.Ordinal);

    /// <summary>Disposes what was kept under <paramref name="name"/> (if it is not this same object), keeps <paramref name="value"/>, returns it.</summary>
    public static T One<T>(string name, T value) where T : IDisposable
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(value);
        IDisposable? old;
        lock (Kept)
        {
            Kept.TryGetValue(name, out old);
            Kept[name] = value;
        }
        if (old != null && !ReferenceEquals(old, value)) old.Dispose();
        return value;
    }

    /// <summary>
    /// A new, empty list kept under <paramref name="name"/>, for a cell that opens a varying number of things:
    /// <c>var clients = Keep.Many&lt;ClientGroup&gt;("clients");</c>. A re-run of the cell disposes every item the
    /// previous run's list holds.
    /// </summary>
    public static List<T> Many<T>(string name) where T : IDisposable => One(name, new Items<T>()).List;

    sealed class Items<T> : IDisposable where T : IDisposable
    {
        public readonly List<T> List = new();

        public void Dispose()
        {
            foreach (var item in List) item.Dispose();
            List.Clear();
        }
    }
}
