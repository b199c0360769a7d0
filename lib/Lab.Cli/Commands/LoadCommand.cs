using System.CommandLine;
using Lab.Load;

namespace Lab.Cli.Commands;

/// <summary>
/// <c>lab load &lt;url&gt;</c>: runs the lab's load generator and prints percentiles, throughput and errors.</summary>
public static class LoadCommand
{
    public static Command Create()
    {
        var url = new Argument<string>("url") { Description = "Where to send: http://127.0.0.1:8080/ or 127.0.0.1:8080 (loopback or a lab host only)." };
        var connections = new Option<int>("--connections", "-c") { Description = "Connections (1-10000).", DefaultValueFactory = _ => 16 };
        var threads = new Option<int?>("--threads", "-t") { Description = "Client threads (default 2)." };
        var duration = new Option<double?>("--duration", "-d") { Description = "Seconds to run (at most 600; default 5 unless --requests)." };
        var requests = new Option<long?>("--requests", "-n") { Description = "Requests to finish (at most 10,000,000)." };
        var rate = new Option<double?>("--rate", "-R") { Description = "Open loop: requests per second, latency measured from when each was due." };
        var close = new Option<bool>("--close") { Description = "A new connection for every request (Connection: close)." };
        var mix = new Option<string?>("--mix") { Description = "Weighted paths instead of the URL's, e.g. 99:/,1:/sleep?ms=200." };
        var timeout = new Option<double>("--timeout") { Description = "Seconds a request may wait for its response.", DefaultValueFactory = _ => 10 };

        var command = new Command("load", "Send HTTP/1.1 load with the lab's own epoll client and print latency percentiles, throughput and errors.")
        {
            url, connections, threads, duration, requests, rate, close, mix, timeout,
        };
        command.SetAction((parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            LoadOptions options;
            try
            {
                options = new LoadOptions
                {
                    Target = parse.GetValue(url),
                    Connections = parse.GetValue(connections),
                    Threads = parse.GetValue(threads),
                    Duration = parse.GetValue(duration) is double d ? TimeSpan.FromSeconds(d) : null,
                    Requests = parse.GetValue(requests),
                    Rate = parse.GetValue(rate),
                    KeepAlive = !parse.GetValue(close),
                    Mix = parse.GetValue(mix) is string m ? RequestMix.ParseList(m) : null,
                    RequestTimeout = TimeSpan.FromSeconds(parse.GetValue(timeout)),
                };
            }
            catch (ArgumentException e)
            {
                error.WriteLine($"lab load: {e.Message}");
                return Task.FromResult(2);
            }
            try
            {
                var progress = new ConsoleProgress(output);
                using var ctrlC = new CtrlC(ct);
                var result = LoadGenerator.Run(options, progress, ctrlC.Token);
                output.Write(result.ToString());
                if (result.Throughput.Count > 1)
                    output.WriteLine($"  per second: {string.Join(" ", result.Throughput.Select(t => t.ToString("N0")))}");
                return Task.FromResult(result.Completed > 0 ? 0 : 1);
            }
            catch (ArgumentException e)
            {
                error.WriteLine($"lab load: {e.Message}");
                return Task.FromResult(2);
            }
            catch (OperationCanceledException)
            {
                error.WriteLine("lab load: stopped.");
                return Task.FromResult(130);
            }
        });
        return command;
    }

    /// <summary>Prints progress synchronously (Progress&lt;T&gt; would post to the thread pool and print out of order).</summary>
    sealed class ConsoleProgress(TextWriter output) : IProgress<LoadProgress>
    {
        public void Report(LoadProgress value) { lock (this) output.WriteLine($"  {value}"); }
    }
}
