using System.CommandLine;
using Lab.Cli.Commands;

// The `lab` command: run chapters headless, build the HTML book, or work at a C# prompt with the library loaded.
// SIGTERM (kill, a closed terminal, Jupyter shutting a kernel down) ends .NET through ProcessExit: what the lab started
// (namespaces, nginx children, sysctl and rlimit scopes) is undone then too, not left for the next run's clean-up.
AppDomain.CurrentDomain.ProcessExit += (_, _) => Lab.LabResources.DisposeAll(TimeSpan.FromSeconds(5));
// Measured: `dotnet Lab.Cli.dll repl` died of SIGTERM without raising ProcessExit, so the signal gets its own handler;
// the default action (exit) follows it.
using var onSigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM,
    _ => Lab.LabResources.DisposeAll(TimeSpan.FromSeconds(5)));

// Every verb is one file under Commands/ that builds its System.CommandLine Command; a new verb is a new file and a line here.
var root = new RootCommand("Backend Accept Lab: run the C# chapters on this machine's kernel.")
{
    RunCommand.Create(),
    BookCommand.Create(),
    ReplCommand.Create(),
    DoctorCommand.Create(),
    ServeCommand.Create(),
    LoadCommand.Create(),
    BenchCommand.Create(),
    SoakCommand.Create(),
    JupyterCommand.Create(),
    ExportCommand.Create(),
};

// Ctrl+C is the commands' own business (the REPL stops a cell, not the process).
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
