using System.Diagnostics;

namespace Lab.Observe;

/// <summary>
/// Counts system calls by name, made by chosen threads only, while an action runs: perf stat on the kernel's
/// syscalls:sys_enter_NAME tracepoints with -t TIDS. Only those threads count, so the load generator, the notebook
/// host and other tests in the same process do not. Needs perf (Debian's linux-perf) and the tracefs that root sees
/// at /sys/kernel/tracing.
/// </summary>
public static class SyscallCounter
{
    /// <summary>
    /// Runs <paramref name="during"/> with perf counting <paramref name="calls"/> (e.g. "accept4", "epoll_wait") on
    /// the threads <paramref name="tids"/>, and returns each call's count. perf prints a line per event every 100 ms;
    /// the action starts only after its first line, so every call it causes is counted. Bounded: 20 s for perf to start.
    /// </summary>
    public static IReadOnlyDictionary<string, long> Count(IEnumerable<int> tids, IReadOnlyList<string> calls, Action during)
    {
        ArgumentNullException.ThrowIfNull(during);
        var ids = tids.ToList();
        if (ids.Count == 0 || ids.Any(t => t <= 0)) throw new ArgumentException("Give the thread ids (gettid) to count, e.g. a topology's Metrics.Workers' ThreadId.", nameof(tids));
        if (calls.Count == 0 || calls.Any(c => c.Length == 0 || !c.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '_')))
            throw new ArgumentException("Give system call names as the kernel spells them, e.g. accept4, epoll_wait, io_uring_enter.", nameof(calls));
        var missing = calls.Where(c => !Directory.Exists($"/sys/kernel/tracing/events/syscalls/sys_enter_{c}")).ToList();
        if (missing.Count > 0)
            throw new ObserveException(Directory.Exists("/sys/kernel/tracing/events/syscalls")
                ? $"This kernel has no tracepoint for {string.Join(", ", missing)}: check the names (ls /sys/kernel/tracing/events/syscalls)."
                : "The kernel's syscall tracepoints are not visible (/sys/kernel/tracing/events/syscalls): run as root, or mount tracefs (mount -t tracefs nodev /sys/kernel/tracing).");
        var psi = new ProcessStartInfo("perf") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "stat", "-x,", "-I", "100", "-t", string.Join(",", ids), "-e", string.Join(",", calls.Select(c => "syscalls:sys_enter_" + c)) })
            psi.ArgumentList.Add(a);
        Process perf;
        try { perf = Process.Start(psi) ?? throw new ObserveException("perf did not start."); }
        catch (System.ComponentModel.Win32Exception e) { throw new ObserveException("perf is not installed: apt-get install -y linux-perf (scripts/prereqs installs it).", 0, e); }
        using (perf)
        {
            var lines = new List<string>();
            using var attached = new ManualResetEventSlim();
            perf.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is null) return;
                lock (lines) lines.Add(e.Data);
                if (e.Data.Contains(",syscalls:sys_enter_", StringComparison.Ordinal)) attached.Set(); // an interval's count line
            };
            perf.BeginErrorReadLine();
            try
            {
                if (!attached.Wait(TimeSpan.FromSeconds(20)))
                    lock (lines) throw new ObserveException("perf stat counted nothing within 20 s. It said: " + string.Join(" / ", lines.Take(8)));
                during();
            }
            finally
            {
                if (!perf.HasExited) Tmds.Linux.LibC.kill(perf.Id, Tmds.Linux.LibC.SIGINT);
                if (!perf.WaitForExit(TimeSpan.FromSeconds(10))) perf.Kill();
                perf.WaitForExit();
            }
            var counts = calls.ToDictionary(c => c, _ => 0L);
            lock (lines)
                foreach (var line in lines)
                {
                    // "time,count,unit,event,..."; "<not counted>" for an interval in which the threads made none.
                    var f = line.Split(',');
                    if (f.Length < 4 || !long.TryParse(f[1], out var n)) continue;
                    var name = f[3].Replace("syscalls:sys_enter_", "", StringComparison.Ordinal);
                    if (counts.ContainsKey(name)) counts[name] += n;
                }
            return counts;
        }
    }
}
