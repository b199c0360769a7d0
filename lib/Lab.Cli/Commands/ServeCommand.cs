using System.CommandLine;
using System.Diagnostics;
using Lab.Topologies;

namespace Lab.Cli.Commands;

/// <summary>
/// <c>lab serve &lt;topology&gt;</c>: runs one server model in the foreground, printing its threads and accept queue each second.</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var topology = new Argument<string>("topology")
        {
            Description = $"The model: {string.Join(", ", TopologyCatalog.Names)} (or node, memcached, ramcloud, nginx, reuseport).",
        };
        var variant = new Option<string?>("--variant") { Description = "shared-socket-acceptors: blocking-accept, epoll-per-thread (default), epoll-exclusive, shared-epoll, accept-mutex; role-split: A-acceptors-R-readers (default 2-acceptors-3-readers)." };
        var workers = new Option<int>("--workers", "-w") { Description = "Worker threads (1-256).", DefaultValueFactory = _ => 2 };
        var address = new Option<string>("--address", "-a") { Description = "Address to listen on.", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port", "-p") { Description = "Port (0: the kernel picks one).", DefaultValueFactory = _ => 8080 };
        var backlog = new Option<int>("--backlog", "-b") { Description = "listen(2) backlog (capped by net.core.somaxconn).", DefaultValueFactory = _ => 128 };
        var duration = new Option<double?>("--duration", "-d") { Description = "Stop after this many seconds (default: until Ctrl+C)." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print only the start and final summary." };
        var workerSpin = new Option<double?>("--worker-spin") { Description = "request-dispatch: microseconds an idle worker polls for its next request before it sleeps (0: sleep at once; default 20)." };
        var sharedCores = new Option<bool>("--shared-cores") { Description = "request-dispatch: leave the dispatcher and the workers to the scheduler (by default the dispatcher has the first CPU to itself, as RAMCloud's has a core)." };
        var emfile = new Option<string>("--emfile") { Description = "What running out of descriptors does (accept4's EMFILE, or fewer than 16 left free for the .NET runtime): reserve-fd (libuv's spare descriptor: accept and close) or pause (nginx's: stop accepting for 100 ms).", DefaultValueFactory = _ => "reserve-fd" };

        var command = new Command("serve", "Run a server topology from the notes until Ctrl+C, printing per-thread counts and the accept queue each second.")
        {
            topology, variant, workers, address, port, backlog, duration, quiet, emfile, workerSpin, sharedCores,
        };
        command.SetAction((parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            Topology server;
            try
            {
                var policy = parse.GetValue(emfile)!.ToLowerInvariant() switch
                {
                    "reserve-fd" or "reservefd" => EmfilePolicy.ReserveFd,
                    "pause" => EmfilePolicy.Pause,
                    var other => throw new ArgumentException($"--emfile {other}: use reserve-fd or pause."),
                };
                var spin = parse.GetValue(workerSpin);
                var a = parse.GetValue(address)!;
                var ep = a.Contains('[') || a.Count(c => c == ':') < 2 ? a : $"[{a}]";
                var options = new TopologyOptions
                {
                    Address = $"{ep}:{parse.GetValue(port)}",
                    Workers = parse.GetValue(workers),
                    Backlog = parse.GetValue(backlog),
                    RequestEvents = false,
                    EmfilePolicy = policy,
                };
                if (spin is double us) options = options with { WorkerSpin = TimeSpan.FromMicroseconds(us) };
                bool shared = parse.GetValue(sharedCores);
                if (shared) options = options with { DispatcherCore = false };
                server = TopologyCatalog.Create(parse.GetValue(topology)!, options, parse.GetValue(variant));
                if ((spin is not null || shared) && server is not RequestDispatch)
                {
                    server.Dispose();
                    throw new ArgumentException($"{(spin is not null ? "--worker-spin" : "--shared-cores")} applies to request-dispatch only: no other model has a dispatcher and workers that wait for requests.");
                }
                server.Start();
            }
            catch (Exception e) when (e is ArgumentException or Lab.Sockets.SyscallException)
            {
                error.WriteLine($"lab serve: {e.Message}");
                return Task.FromResult(2);
            }
            using var stop = new CtrlC(ct); // Ctrl+C ends the run and prints the summary
            using (server)
            {
                var cores = server is RequestDispatch { DispatcherCpus.Count: > 0 } rd
                    ? $"; dispatcher on CPU {string.Join(",", rd.DispatcherCpus)}, workers on CPU {string.Join(",", rd.WorkerCpus)}" : "";
                output.WriteLine($"{server.Name} listening on {server.Url} ({server.Metrics.Workers.Count} threads{cores}). Ctrl+C stops.");
                var limit = parse.GetValue(duration) is double s ? TimeSpan.FromSeconds(Math.Clamp(s, 0, 86_400)) : Timeout.InfiniteTimeSpan;
                var clock = Stopwatch.StartNew();
                long lastRequests = 0;
                while (!stop.Token.IsCancellationRequested && (limit == Timeout.InfiniteTimeSpan || clock.Elapsed < limit))
                {
                    var left = limit == Timeout.InfiniteTimeSpan ? TimeSpan.FromSeconds(1) : TimeSpan.FromTicks(Math.Min(TimeSpan.TicksPerSecond, (limit - clock.Elapsed).Ticks));
                    if (left > TimeSpan.Zero) stop.Token.WaitHandle.WaitOne(left);
                    if (parse.GetValue(quiet)) continue;
                    var m = server.Metrics;
                    var queues = string.Join(" ", server.AcceptQueues().Select(q => $"{q.Length}/{q.Limit}"));
                    output.WriteLine($"[{clock.Elapsed.TotalSeconds,5:0}s] {m.RequestsServed - lastRequests,8:N0} req/s  open {m.LiveConnections,5}  accept queue {queues}  " +
                                     string.Join("  ", m.Workers.Select(w => $"{w.Name}: {w.ConnectionsServed}c {w.RequestsServed}r")));
                    lastRequests = m.RequestsServed;
                }
                var report = server.Stop(TimeSpan.FromSeconds(5));
                output.WriteLine(server.Metrics.ToString());
                output.WriteLine(report.ToString());
                return Task.FromResult(report.Stopped && server.Failures.Count == 0 ? 0 : 1);
            }
        });
        return command;
    }
}
