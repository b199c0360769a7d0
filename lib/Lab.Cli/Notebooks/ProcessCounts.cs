namespace Lab.Cli.Notebooks;

/// <summary>
/// This process's open file descriptors (/proc/self/fd, each with its readlink target: "socket:[123]",
/// "anon_inode:[eventpoll]", "/dev/null") and threads (/proc/self/task, each with its name from comm, 15
/// characters at most) at one moment. <c>lab run --repeat N</c> reads it after a chapter's first and last run in
/// one session, to see whether re-running the cells leaves more behind each time.
/// </summary>
public sealed record ProcessCounts(IReadOnlyList<string> Fds, IReadOnlyList<string> Threads)
{
    /// <summary>
    /// Threads the .NET runtime starts and retires on its own: thread-pool workers (".NET TP Worker", which retire
    /// after 20 s idle, so their number after a busy cell depends on the last few seconds, not on what the cells
    /// kept), the tiered-compilation worker (".NET Tiered Com", started when methods get hot) and the background
    /// GC thread (".NET BGC", made at the first background collection, then kept: it appeared between run 1 and
    /// run 10 of 02 with --repeat 10). Counted and shown, never compared.
    /// </summary>
    public static bool IsPoolThread(string name) =>
        name.StartsWith(".NET TP", StringComparison.Ordinal) || name.StartsWith(".NET Tiered", StringComparison.Ordinal)
        || name.StartsWith(".NET BGC", StringComparison.Ordinal) || name.StartsWith(".NET Server GC", StringComparison.Ordinal);

    /// <summary>Reads /proc/self/fd and /proc/self/task now. An fd or thread that goes while being read is skipped.</summary>
    public static ProcessCounts Read()
    {
        var fds = new List<string>();
        foreach (var f in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try { fds.Add(new FileInfo(f).LinkTarget ?? "?"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        var threads = new List<string>();
        foreach (var d in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try { threads.Add(File.ReadAllText(Path.Combine(d, "comm")).TrimEnd('\n')); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        // Reading /proc/self/fd holds one fd of its own (the directory) while it lists: it is in the list; drop it.
        int self = fds.FindIndex(t => t.StartsWith("/proc/", StringComparison.Ordinal) && t.EndsWith("/fd", StringComparison.Ordinal));
        if (self >= 0) fds.RemoveAt(self);
        return new ProcessCounts(fds, threads);
    }

    /// <summary>Threads other than <see cref="IsPoolThread"/> ones: those the lab, the engine and the cells started.</summary>
    public IReadOnlyList<string> OwnThreads => Threads.Where(t => !IsPoolThread(t)).ToList();

    /// <summary>Thread-pool and tiered-compilation threads now.</summary>
    public int PoolThreads => Threads.Count(IsPoolThread);

    /// <summary>"41 fds, 23 threads (6 pool)".</summary>
    public override string ToString() => $"{Fds.Count} fds, {Threads.Count} threads ({PoolThreads} pool)";

    /// <summary>What <paramref name="later"/> has beyond <paramref name="earlier"/>, each as "target ×n" (a multiset difference).</summary>
    public static IReadOnlyList<string> Grown(IEnumerable<string> earlier, IEnumerable<string> later)
    {
        var before = earlier.GroupBy(x => x).ToDictionary(g => g.Key, g => g.Count());
        return later.GroupBy(x => x)
            .Select(g => (g.Key, More: g.Count() - before.GetValueOrDefault(g.Key)))
            .Where(x => x.More > 0)
            .OrderByDescending(x => x.More).ThenBy(x => x.Key, StringComparer.Ordinal)
            .Select(x => $"{x.Key} ×{x.More}")
            .ToList();
    }
}

/// <summary>
/// A chapter run <see cref="Runs"/> times in one session: the process's counts after the first and the last run,
/// and whether they held. Fds may grow by <see cref="FdSlack"/> (the runtime opens a few lazily: a perf map, an
/// eventfd for a new epoll-based timer); threads other than the pool's must be the same names, as many of each.
/// </summary>
public sealed record RepeatCheck(int Runs, ProcessCounts First, ProcessCounts Last, TimeSpan Settled)
{
    /// <summary>How many more fds the last run may leave than the first.</summary>
    public const int FdSlack = 2;

    /// <summary>Fds the last run left beyond the first, by target ("socket ×3", "anon_inode:[eventpoll] ×1").</summary>
    public IReadOnlyList<string> NewFds => ProcessCounts.Grown(Kinds(First.Fds), Kinds(Last.Fds));

    /// <summary>Non-pool threads the last run left beyond the first, by name.</summary>
    public IReadOnlyList<string> NewThreads => ProcessCounts.Grown(First.OwnThreads, Last.OwnThreads);

    /// <summary>
    /// Assemblies first loaded after run 1: a .dll with no fd after the first run and at most two now (the runtime keeps
    /// a loaded assembly's file open, twice). A process loads an assembly once and never unloads it, so this is not
    /// growth per run: 01 loaded System.IO.Compression and System.Collections.NonGeneric between its 3rd and 5th run
    /// and held the same 4 fds after run 10. A .dll that already had fds after run 1 and gained more is a leak, and
    /// counts (the engine once mapped an assembly again for every cell).
    /// </summary>
    public IReadOnlyList<string> LaterLoads => Last.Fds.Where(f => f.EndsWith(".dll", StringComparison.Ordinal)).Distinct()
        .Where(p => !First.Fds.Contains(p) && Last.Fds.Count(f => f == p) <= 2).ToList();

    /// <summary>How many more fds the last run holds than the first, assemblies loaded later aside.</summary>
    public int FdGrowth => Last.Fds.Count - First.Fds.Count - Last.Fds.Count(f => LaterLoads.Contains(f));

    /// <summary>True when the fd count grew by at most <see cref="FdSlack"/> and no non-pool thread was added.</summary>
    public bool Held => FdGrowth <= FdSlack && NewThreads.Count == 0;

    /// <summary>Socket and pipe targets carry an inode number that differs between runs; compare their kind.</summary>
    static IEnumerable<string> Kinds(IEnumerable<string> targets) =>
        targets.Select(t => t.IndexOf(":[", StringComparison.Ordinal) is > 0 and var i && !t.StartsWith("anon_inode", StringComparison.Ordinal) ? t[..i] : t);

    /// <summary>"after run 1: 41 fds, 23 threads (6 pool); after run 10: 41 fds, 23 threads (4 pool)" and what grew.</summary>
    public override string ToString()
    {
        var s = $"after run 1: {First}; after run {Runs}: {Last}";
        if (LaterLoads.Count > 0) s += $"; assemblies loaded after run 1: {string.Join(", ", LaterLoads.Select(Path.GetFileName))}";
        if (Held) return s;
        var grew = new List<string>();
        if (FdGrowth > FdSlack) grew.Add($"{FdGrowth} more fds ({string.Join(", ", ProcessCounts.Grown(Kinds(First.Fds), Kinds(Last.Fds.Where(f => !LaterLoads.Contains(f)))))})");
        if (NewThreads.Count > 0) grew.Add($"{Last.OwnThreads.Count - First.OwnThreads.Count} more threads ({string.Join(", ", NewThreads)})");
        return s + "; grew: " + string.Join("; ", grew);
    }
}
