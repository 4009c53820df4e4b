using System.Net;
using System.Net.Sockets;

namespace Gateway.TestKit;

/// <summary>
/// A real mosquitto playing the cloud broker: its own temp directory and free loopback port,
/// persistence on (so a subscriber's session survives a restart), stopped and started by PID on
/// the same port.
/// </summary>
public sealed class MosquittoBroker : IAsyncDisposable
{
    private readonly string _directory;
    private readonly string _config;
    private ExternalProcess? _process;

    private MosquittoBroker(string directory, int port, string config)
    {
        _directory = directory;
        Port = port;
        _config = config;
    }

    public int Port { get; }

    public string Url => $"mqtt://127.0.0.1:{Port}";

    public bool IsRunning => _process is not null;

    /// <summary>What the running broker has logged.</summary>
    public string Log => _process?.Output ?? string.Empty;

    /// <summary>Starts a broker; <paramref name="extraConfig"/> lines are added (TLS, ACLs...).</summary>
    public static async Task<MosquittoBroker> StartAsync(bool start = true, params string[] extraConfig)
    {
        var directory = Directory.CreateTempSubdirectory("gateway-mosquitto-").FullName;

        // Started as root, mosquitto drops to its own user before it saves its persistent sessions
        // (on SIGTERM); the directory must let that user write, or the sessions are gone after a restart.
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
                UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute);
        }
        var port = FreePort();
        var config = Path.Combine(directory, "mosquitto.conf");
        await File.WriteAllLinesAsync(config,
        [
            $"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            $"persistence_location {directory}/",
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            .. extraConfig,
        ]);
        var broker = new MosquittoBroker(directory, port, config);
        if (start)
        {
            await broker.StartAsync();
        }

        return broker;
    }

    public async Task StartAsync()
    {
        if (_process is not null)
        {
            return;
        }

        _process = ExternalProcess.Start("mosquitto", ["-c", _config], _directory);
        await WaitFor.ConditionAsync(() => Accepts(Port) || _process.Exited.IsCompleted, $"mosquitto to listen on {Port}");
        if (_process.Exited.IsCompleted)
        {
            throw new InvalidOperationException("mosquitto exited: " + _process.Output);
        }
    }

    /// <summary>Stops it (SIGTERM: it saves its persistent sessions) and waits for the exit.</summary>
    public async Task StopAsync()
    {
        if (_process is null)
        {
            return;
        }

        _process.Signal(15);
        await _process.WaitForExitAsync();
        await _process.DisposeAsync();
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool Accepts(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
