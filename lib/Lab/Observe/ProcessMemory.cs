using System.Globalization;
using Lab.Interop;

namespace Lab.Observe;

/// <summary>What <see cref="ProcessMemory.Read"/> collects before it reads.</summary>
public enum Collect { None, Full, Aggressive }

/// <summary>
/// Where this process's memory is, read from the kernel (/proc/self/smaps, status), the runtime
/// (<see cref="GC.GetGCMemoryInfo()"/>) and glibc's allocator (mallinfo2). All sizes in bytes.
/// </summary>
/// <param name="Rss">Resident set: every page of the process in RAM (smaps_rollup Rss).</param>
/// <param name="Anonymous">Resident anonymous pages: heaps, stacks, the GC's regions, JIT code (smaps_rollup Anonymous).</param>
/// <param name="GcHeap">Bytes in managed objects the last GC left alive (GCMemoryInfo.HeapSizeBytes).</param>
/// <param name="GcCommitted">Bytes the GC has committed from the kernel, used or kept for reuse (GCMemoryInfo.TotalCommittedBytes).</param>
/// <param name="MallocInUse">Bytes malloc'd and not yet freed, by the runtime and native libraries (mallinfo2 uordblks + hblkhd).</param>
/// <param name="MallocFree">Bytes freed and kept inside malloc's arenas for reuse (mallinfo2 fordblks).</param>
/// <param name="MallocArenas">Bytes malloc's arenas took from the kernel (mallinfo2 arena; the main arena and one per thread, up to 8 per core).</param>
/// <param name="StackResident">Resident pages of thread stacks: the read-write anonymous mappings that sit just above a one-page guard.</param>
/// <param name="Threads">Threads in the process (status Threads).</param>
/// <param name="Fds">Open file descriptors (/proc/self/fd).</param>
public readonly record struct ProcessMemory(long Rss, long Anonymous, long GcHeap, long GcCommitted, long MallocInUse, long MallocFree,
    long MallocArenas, long StackResident, int Threads, int Fds)
{
    /// <summary>
    /// Reads this process now, after <paramref name="collect"/>: <see cref="Collect.None"/> reads it as it is;
    /// <see cref="Collect.Full"/> first runs two full blocking, compacting collections (finalizers between them), so
    /// <see cref="GcHeap"/> counts only what is still reachable, but the GC keeps the regions it freed committed for
    /// reuse; <see cref="Collect.Aggressive"/> also has the GC give those back to the kernel, and malloc the free pages
    /// of its arenas (malloc_trim), so what stays resident is what the process still uses.
    /// </summary>
    public static ProcessMemory Read(Collect collect = Collect.Full)
    {
        if (collect != Collect.None)
        {
            var mode = collect == Collect.Aggressive ? GCCollectionMode.Aggressive : GCCollectionMode.Forced;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(GC.MaxGeneration, mode, blocking: true, compacting: true);
            if (collect == Collect.Aggressive) malloc.malloc_trim(0);
        }
        var gc = GC.GetGCMemoryInfo(GCKind.Any);
        var m = malloc.mallinfo2();
        var (rss, anon, stacks) = ReadSmaps();
        int threads = 0;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("Threads:", StringComparison.Ordinal)) { threads = int.Parse(line.AsSpan(8).Trim(), CultureInfo.InvariantCulture); break; }
        return new ProcessMemory(rss, anon, gc.HeapSizeBytes, gc.TotalCommittedBytes,
            (long)(m.uordblks + m.hblkhd), (long)m.fordblks, (long)m.arena, stacks, threads, Directory.GetFiles("/proc/self/fd").Length);
    }

    /// <summary>
    /// Resident memory that is neither the GC's, malloc's nor a thread stack: the runtime's own mmaps (JIT code,
    /// type data), mapped files. Can be negative by a little: the GC's committed bytes are not all resident.
    /// </summary>
    public long Other => Rss - GcCommitted - MallocInUse - MallocFree - StackResident;

    /// <summary>
    /// One pass over /proc/self/smaps: total Rss and Anonymous, and the Rss of thread stacks. glibc puts a guard page
    /// (PROT_NONE, one page) just below every stack it maps for a thread, so a read-write private anonymous mapping that
    /// starts where a one-page ---p mapping ends is a stack.
    /// </summary>
    static (long Rss, long Anonymous, long Stacks) ReadSmaps()
    {
        long rss = 0, anon = 0, stacks = 0;
        ulong prevStart = 0, prevEnd = 0; string prevPerms = "";
        bool inStack = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            if (line.Length > 0 && char.IsAsciiHexDigit(line[0]) && line.IndexOf('-') is > 0 and var dash && line.IndexOf(' ') is > 0 and var sp && dash < sp)
            {
                var start = ulong.Parse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                var end = ulong.Parse(line.AsSpan(dash + 1, sp - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                var perms = line.Substring(sp + 1, 4);
                // Anonymous: no path after the inode column (the line ends after "00:00 0" and padding).
                var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
                bool anonymous = fields.Length < 6 || fields[5].Trim().Length == 0;
                inStack = anonymous && perms == "rw-p" && prevPerms == "---p" && prevEnd == start && prevEnd - prevStart == (ulong)Environment.SystemPageSize;
                prevStart = start; prevEnd = end; prevPerms = perms;
                continue;
            }
            if (line.StartsWith("Rss:", StringComparison.Ordinal)) { var kb = Kb(line); rss += kb; if (inStack) stacks += kb; }
            else if (line.StartsWith("Anonymous:", StringComparison.Ordinal)) anon += Kb(line);
        }
        return (rss * 1024, anon * 1024, stacks * 1024);
    }

    static long Kb(string line)
    {
        var s = line.AsSpan(line.IndexOf(':') + 1).Trim();
        return long.Parse(s[..s.IndexOf(' ')], CultureInfo.InvariantCulture);
    }

    static string Mb(long bytes) => (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture);

    public override string ToString() =>
        $"rss {Mb(Rss)} MB (anon {Mb(Anonymous)}): GC committed {Mb(GcCommitted)} (heap {Mb(GcHeap)}), malloc {Mb(MallocInUse)} in use + {Mb(MallocFree)} free, " +
        $"stacks {Mb(StackResident)} ({Threads} threads), other {Mb(Other)}; {Fds} fds";
}
