using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Lab.Hosts;
using Lab.Sockets;
using Lab.Http;
using Lab.Topologies;

namespace Lab.Peers;

/// <summary>How to run nginx as a peer: the knobs that match it to one of the lab's topologies.</summary>
public sealed record NginxOptions
{
    /// <summary>worker_processes. Defaults to 1.</summary>
    public int Workers { get; init; } = 1;

    /// <summary>
    /// <c>listen ... reuseport</c>: one listening socket per worker (SO_REUSEPORT), as <see cref="ReusePortShards"/> does.
    /// Defaults to false: one socket shared by every worker, as the SharedSocketAcceptors variants do.
    /// </summary>
    public bool ReusePort { get; init; }

    /// <summary>
    /// <c>accept_mutex on</c>: workers take turns holding the listener in their epoll set, as the AcceptMutex variant
    /// does. Defaults to false (nginx's default since 1.11.3; with EPOLLEXCLUSIVE the kernel wakes one worker).
    /// </summary>
    public bool AcceptMutex { get; init; }

    /// <summary><c>listen ... backlog=N</c>. Defaults to 511 (nginx's own default); the kernel caps it at net.core.somaxconn.</summary>
    public int Backlog { get; init; } = 511;

    /// <summary>
    /// Where to listen, "ADDRESS:PORT": loopback, or a host the lab created (<see cref="NetHost"/>; nginx then runs
    /// inside its namespace when the address is the namespace's side). Port 0 picks a free port. Defaults to "127.0.0.1:0".
    /// </summary>
    public string Address { get; init; } = "127.0.0.1:0";
}

/// <summary>
/// nginx (/usr/sbin/nginx, Debian's package) run as a real peer: its own temporary prefix, config, pid and log files,
/// the master in the foreground as this process's child, serving on every path the same 13-byte body and the same
/// response size as <see cref="TinyHttp"/>'s <c>/</c>, so a benchmark compares servers, not payloads.
/// Dispose stops it (QUIT, then TERM, then KILL, each bounded) and deletes the temporary directory.
/// </summary>
public sealed class Nginx : IDisposable
{
    /// <summary>Where Debian installs nginx.</summary>
    public const string Binary = "/usr/sbin/nginx";
    const string DirPrefix = "lab-nginx-";
    static int _next;

    readonly Process _process;
    readonly string _dir;
    readonly StringBuilder _stderr = new();
    int _disposed;

    /// <summary>True when nginx is installed where Debian puts it.</summary>
    public static bool Installed => File.Exists(Binary);

    /// <summary>Where nginx listens.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>"http://ADDRESS:PORT/".</summary>
    public string Url => $"http://{Lab.Sockets.Endpoints.Format(LocalEndPoint)}/";

    /// <summary>The master's process id.</summary>
    public int MasterPid { get; }

    /// <summary>The worker processes' ids (worker_processes of them), read from /proc once nginx answered.</summary>
    public IReadOnlyList<int> WorkerPids { get; }

    /// <summary>The nginx.conf it runs with.</summary>
    public string Config { get; }

    /// <summary>The options it was started with.</summary>
    public NginxOptions Options { get; }

    Nginx(Process process, string dir, IPEndPoint endpoint, string config, NginxOptions options, StringBuilder stderr)
    {
        _process = process; _dir = dir; LocalEndPoint = endpoint; Config = config; Options = options; _stderr = stderr;
        MasterPid = process.Id;
        WorkerPids = [];
        LabResources.Track(this, "Nginx");
        try { WorkerPids = WaitForWorkers(options.Workers); }
        catch { Dispose(); throw; }
    }

    /// <summary>
    /// Starts nginx with <paramref name="options"/> (defaults: 1 worker on 127.0.0.1, a free port) and returns once it
    /// answers a request. Throws <see cref="LabSetupException"/> when nginx is missing or does not come up within 10 s.
    /// </summary>
    public static Nginx Start(NginxOptions? options = null)
    {
        options ??= new NginxOptions();
        if (options.Workers is < 1 or > 64)
            throw new ArgumentOutOfRangeException(nameof(options), options.Workers, "NginxOptions.Workers must be 1-64.");
        if (options.Backlog is < 1 or > 65535)
            throw new ArgumentOutOfRangeException(nameof(options), options.Backlog, "NginxOptions.Backlog must be 1-65535.");
        if (!IPEndPoint.TryParse(options.Address, out var requested))
            throw new ArgumentException($"NginxOptions.Address '{options.Address}' is not ADDRESS:PORT (e.g. 127.0.0.1:0).", nameof(options));
        LabAddresses.Ensure(requested.Address, "nginx address");
        if (!Installed)
            throw new LabSetupException($"nginx is not installed ({Binary} is missing).", "Install it: apt-get install -y nginx (bench/run does this).");
        var host = NetHost.Live.FirstOrDefault(h => h.Address.Equals(requested.Address));
        RemoveStale();

        // nginx refuses port 0 in `listen`, so a free port is found first; another process may take it in between,
        // hence the retries on EADDRINUSE.
        Exception? last = null;
        for (int attempt = 0; attempt < 5; attempt++)
        {
            var port = requested.Port != 0 ? requested.Port : FreePort(requested.Address, host);
            var endpoint = new IPEndPoint(requested.Address, port);
            try { return Launch(options, endpoint, host); }
            catch (LabSetupException e) when (requested.Port == 0 && e.Message.Contains("Address already in use")) { last = e; }
        }
        throw last!;
    }

    static Nginx Launch(NginxOptions options, IPEndPoint endpoint, NetHost? host)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"{DirPrefix}{Environment.ProcessId}-{Interlocked.Increment(ref _next)}");
        Directory.CreateDirectory(dir);
        var config = BuildConfig(options, endpoint, dir);
        var confPath = Path.Combine(dir, "nginx.conf");
        File.WriteAllText(confPath, config);

        var psi = new ProcessStartInfo(host is null ? Binary : "ip")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = false, UseShellExecute = false,
        };
        if (host is not null) foreach (var a in new[] { "netns", "exec", host.Namespace, Binary }) psi.ArgumentList.Add(a);
        foreach (var a in new[] { "-p", dir + "/", "-c", confPath, "-e", Path.Combine(dir, "error.log") }) psi.ArgumentList.Add(a);
        var stderr = new StringBuilder();
        Process process;
        try { process = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            Directory.Delete(dir, true);
            throw new LabSetupException($"nginx could not start: {e.Message}.", "Install it: apt-get install -y nginx.");
        }
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.AppendLine(e.Data); };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        if (!WaitUntilAnswering(endpoint, process, TimeSpan.FromSeconds(10)))
        {
            var log = ReadLog(dir);
            string text;
            lock (stderr) text = stderr.ToString();
            Stop(process, [], TimeSpan.FromSeconds(2));
            process.Dispose();
            TryDelete(dir);
            throw new LabSetupException($"nginx did not answer on {Lab.Sockets.Endpoints.Format(endpoint)} within 10 s: {(text + log).Trim()}",
                "Check the message above (a port in use, a config error).");
        }
        return new Nginx(process, dir, endpoint, config, options, stderr);
    }

    /// <summary>The configuration: everything a benchmark does not need is off (access log, files, gzip).</summary>
    static string BuildConfig(NginxOptions o, IPEndPoint endpoint, string dir)
    {
        var listen = Lab.Sockets.Endpoints.Format(endpoint) + $" backlog={o.Backlog}" + (o.ReusePort ? " reuseport" : "");
        // The response matches TinyHttp's byte for byte in size: nginx always sends Server and Date; server_tokens off
        // makes "Server: nginx" (15 bytes with CRLF), the length of TinyHttp's "Server: lab/1".
        return string.Join('\n',
            "daemon off;",
            "master_process on;",
            // Run as root, nginx's workers switch to `user` (compiled default nobody:nobody, and Debian has no group
            // nobody): keep them as root, as the lab's own servers run.
            Tmds.Linux.LibC.geteuid() == 0 ? "user root root;" : "",
            $"worker_processes {o.Workers};",
            "worker_rlimit_nofile 65536;",
            $"pid {dir}/nginx.pid;",
            $"error_log {dir}/error.log warn;",
            "events {",
            "    worker_connections 16384;",
            $"    accept_mutex {(o.AcceptMutex ? "on" : "off")};",
            "}",
            "http {",
            "    access_log off;",
            "    server_tokens off;",
            "    keepalive_requests 100000000;",
            "    keepalive_timeout 75s;",
            $"    client_body_temp_path {dir}/body;",
            $"    proxy_temp_path {dir}/proxy;",
            $"    fastcgi_temp_path {dir}/fastcgi;",
            $"    uwsgi_temp_path {dir}/uwsgi;",
            $"    scgi_temp_path {dir}/scgi;",
            "    default_type text/plain;",
            "    server {",
            $"        listen {listen};",
            "        location / {",
            "            return 200 \"Hello, world\\n\";",
            "        }",
            // Which worker process answered: chapter 12 counts connections per worker by it (benchmarks ask for /).
            "        location = /pid {",
            "            return 200 \"$pid\\n\";",
            "        }",
            "    }",
            "}",
            "");
    }

    static int FreePort(IPAddress address, NetHost? host)
    {
        int Bind()
        {
            using var s = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(address, 0));
            return ((IPEndPoint)s.LocalEndPoint!).Port;
        }
        return host is null ? Bind() : host.Run(Bind);
    }

    static bool WaitUntilAnswering(IPEndPoint endpoint, Process process, TimeSpan limit)
    {
        var request = TinyHttp.BuildRequest(keepAlive: false);
        var deadline = Stopwatch.StartNew();
        var buffer = new byte[1024];
        while (deadline.Elapsed < limit)
        {
            if (process.HasExited) return false;
            try
            {
                using var s = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 2000, SendTimeout = 2000 };
                s.Connect(endpoint);
                s.Send(request);
                int got = 0, n;
                while ((n = s.Receive(buffer, got, buffer.Length - got, SocketFlags.None)) > 0) got += n;
                if (got > 12 && Encoding.ASCII.GetString(buffer, 0, 12) == "HTTP/1.1 200") return true;
            }
            catch (SocketException) { }
            Thread.Sleep(20);
        }
        return false;
    }

    /// <summary>The master's children, read from /proc (each /proc/PID/stat's fourth field is the parent's id).</summary>
    static List<int> ChildrenOf(int parent)
    {
        var children = new List<int>();
        foreach (var d in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(d), out var pid)) continue;
            string stat;
            try { stat = File.ReadAllText(Path.Combine(d, "stat")); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            // "PID (comm) STATE PPID ...": comm may contain spaces, so parse after the last ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (fields.Length > 1 && int.TryParse(fields[1], out var ppid) && ppid == parent) children.Add(pid);
        }
        children.Sort();
        return children;
    }

    List<int> WaitForWorkers(int expected)
    {
        var deadline = Stopwatch.StartNew();
        List<int> workers;
        // The master forks its workers before the first accept, but a worker may still be starting when the first
        // request is answered by another: wait (bounded) until all of them exist.
        while ((workers = ChildrenOf(MasterPid)).Count < expected && deadline.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(10);
        if (workers.Count != expected)
            throw new LabSetupException($"nginx started {workers.Count} worker processes, not {expected}.", "Check " + Path.Combine(_dir, "error.log") + ".");
        return workers;
    }

    /// <summary>
    /// CPU time (user + system) the master and workers have used so far, from /proc/PID/stat (utime, stime; in clock
    /// ticks of 10 ms, so read it over a second or more).
    /// </summary>
    public TimeSpan CpuTime
    {
        get
        {
            long ticks = 0;
            foreach (var pid in WorkerPids.Append(MasterPid))
            {
                string stat;
                try { stat = File.ReadAllText($"/proc/{pid}/stat"); }
                catch (IOException) { continue; }
                // Fields after "(comm)": state is field 3, utime 14 and stime 15.
                var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                ticks += long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture);
            }
            return TimeSpan.FromSeconds((double)ticks / 100); // USER_HZ is 100 on Linux
        }
    }

    /// <summary>nginx's error log so far (warnings and errors).</summary>
    public string ErrorLog => ReadLog(_dir);

    static string ReadLog(string dir)
    {
        try { return File.ReadAllText(Path.Combine(dir, "error.log")); }
        catch (IOException) { return ""; }
    }

    /// <summary>QUIT (graceful), then TERM (fast), then KILL, each bounded; then the workers, in case the master died first.</summary>
    static bool Stop(Process process, IReadOnlyList<int> workers, TimeSpan graceful)
    {
        if (!process.HasExited)
        {
            Signal(process.Id, Tmds.Linux.LibC.SIGQUIT);
            if (!process.WaitForExit(graceful))
            {
                Signal(process.Id, Tmds.Linux.LibC.SIGTERM);
                if (!process.WaitForExit(TimeSpan.FromSeconds(2)))
                {
                    try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                    process.WaitForExit(2000);
                }
            }
        }
        foreach (var w in workers)
            if (IsNginx(w)) Signal(w, Tmds.Linux.LibC.SIGKILL);
        return process.HasExited;
    }

    static void Signal(int pid, int signal) => Tmds.Linux.LibC.kill(pid, signal);

    static bool IsNginx(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/comm").Trim() == "nginx"; }
        catch (IOException) { return false; }
    }

    static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>
    /// Stops nginx peers and deletes the directories left behind by lab processes that no longer exist (a run that
    /// was killed before it could dispose). Returns how many it removed.
    /// </summary>
    public static int RemoveStale()
    {
        int removed = 0;
        foreach (var dir in Directory.GetDirectories(Path.GetTempPath(), DirPrefix + "*"))
        {
            var parts = Path.GetFileName(dir)[DirPrefix.Length..].Split('-');
            if (parts.Length != 2 || !int.TryParse(parts[0], out var owner) || owner == Environment.ProcessId || Directory.Exists($"/proc/{owner}"))
                continue;
            try
            {
                if (int.TryParse(File.ReadAllText(Path.Combine(dir, "nginx.pid")).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var master)
                    && IsNginx(master))
                {
                    foreach (var w in ChildrenOf(master)) Signal(w, Tmds.Linux.LibC.SIGKILL);
                    Signal(master, Tmds.Linux.LibC.SIGKILL);
                }
            }
            catch (IOException) { }
            TryDelete(dir);
            removed++;
        }
        return removed;
    }

    /// <summary>Stops nginx (bounded) and deletes its directory. Safe to call twice.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        LabResources.Untrack(this);
        try { Stop(_process, WorkerPids, TimeSpan.FromSeconds(3)); }
        finally
        {
            _process.Dispose();
            TryDelete(_dir);
        }
    }

    /// <summary>"nginx: 2 workers, reuseport, accept_mutex off on http://127.0.0.1:PORT/".</summary>
    public override string ToString() =>
        $"nginx: {Options.Workers} worker{(Options.Workers == 1 ? "" : "s")}{(Options.ReusePort ? ", reuseport" : "")}, accept_mutex {(Options.AcceptMutex ? "on" : "off")} on {Url}";
}
