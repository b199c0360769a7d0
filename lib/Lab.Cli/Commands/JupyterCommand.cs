using System.CommandLine;
using Lab.Cli.Engine;
using Lab.Cli.Jupyter;

namespace Lab.Cli.Commands;

/// <summary><c>lab jupyter install | uninstall | kernel</c>: the lab's Jupyter kernel and its kernelspec.</summary>
static class JupyterCommand
{
    public static Command Create()
    {
        var user = new Option<bool>("--user") { Description = "Install for this user (~/.local/share/jupyter/kernels). The default when not root." };
        var prefix = new Option<string?>("--prefix") { Description = "Install under DIR/share/jupyter/kernels (point JUPYTER_PATH at DIR/share/jupyter)." };
        var install = new Command("install", $"Write the kernelspec '{KernelSpec.Name}' (\"{KernelSpec.DisplayName}\"). Running it again changes nothing.")
        {
            user, prefix,
        };
        install.SetAction(parse => Install(parse.GetValue(user), parse.GetValue(prefix)));
        var uninstall = new Command("uninstall", $"Remove the kernelspec '{KernelSpec.Name}'.")
        {
            user, prefix,
        };
        uninstall.SetAction(parse => Uninstall(parse.GetValue(user), parse.GetValue(prefix)));
        var connectionFile = new Option<string>("--connection-file", "-f") { Description = "The connection file Jupyter wrote (ports, ip, key).", Required = true };
        var timeout = CellTimeout.Option("Defaults to none: interrupt instead.");
        var kernel = new Command("kernel", "Run the kernel (Jupyter starts this through the kernelspec's argv).")
        {
            connectionFile, timeout,
        };
        kernel.SetAction((parse, ct) => KernelAsync(parse.GetValue(connectionFile)!, parse.GetValue(timeout), ct));
        return new Command("jupyter", "The lab's Jupyter kernel (C#, messaging protocol 5.3): install its kernelspec, or run it.")
        {
            install, uninstall, kernel,
        };
    }

    static int Install(bool user, string? prefix)
    {
        var dir = KernelSpec.KernelsDir(user, prefix);
        var (folder, changed) = KernelSpec.Install(dir);
        Console.WriteLine(changed ? $"installed kernelspec {KernelSpec.Name} (\"{KernelSpec.DisplayName}\") in {folder}"
                                  : $"kernelspec {KernelSpec.Name} already up to date in {folder}");
        if (prefix != null) Console.WriteLine($"Jupyter finds it with JUPYTER_PATH={Path.Combine(Path.GetFullPath(prefix), "share", "jupyter")}");
        return 0;
    }

    static int Uninstall(bool user, string? prefix)
    {
        var dir = KernelSpec.KernelsDir(user, prefix);
        Console.WriteLine(KernelSpec.Uninstall(dir) ? $"removed {Path.Combine(dir, KernelSpec.Name)}" : $"no kernelspec {KernelSpec.Name} in {dir}");
        return 0;
    }

    static async Task<int> KernelAsync(string connectionFile, double? timeout, CancellationToken ct)
    {
        ConnectionFile connection;
        try { connection = ConnectionFile.Load(connectionFile); }
        catch (Exception e) when (e is IOException or FormatException or System.Text.Json.JsonException or InvalidOperationException)
        {
            Console.Error.WriteLine($"lab jupyter kernel: cannot read the connection file {connectionFile}: {e.Message}");
            return 2;
        }
        ConsoleRouter.Install();
        var kernel = new JupyterKernel(connection, new KernelOptions
        {
            CellTimeout = timeout is > 0 ? TimeSpan.FromSeconds(timeout.Value) : Timeout.InfiniteTimeSpan,
        });
        // A terminal's Ctrl+C (jupyter console shares the process group) must not kill the kernel: front ends interrupt with interrupt_request.
        Console.CancelKeyPress += (_, e) => e.Cancel = true;
        int code;
        try { code = await kernel.RunAsync(ct); }
        catch (Exception e) when (e is NetMQ.NetMQException or System.Net.Sockets.SocketException || e.GetType().Namespace == "NetMQ")
        {
            Console.Error.WriteLine($"lab jupyter kernel: cannot bind the sockets of {connectionFile} ({connection.Ip}): {e.InnerException?.Message ?? e.Message}");
            return 1;
        }
        NetMQ.NetMQConfig.Cleanup(block: false);
        return code;
    }
}
