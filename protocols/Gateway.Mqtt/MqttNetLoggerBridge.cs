using System.Globalization;
using Microsoft.Extensions.Logging;
using MQTTnet.Diagnostics.Logger;

namespace Gateway.Mqtt;

/// <summary>Sends MQTTnet's own log lines to <see cref="ILogger"/> under the "MQTTnet" category.</summary>
public sealed partial class MqttNetLoggerBridge(ILoggerFactory loggerFactory) : IMqttNetLogger
{
    private readonly ILogger _logger = loggerFactory.CreateLogger("MQTTnet");

    public bool IsEnabled => _logger.IsEnabled(LogLevel.Warning) || _logger.IsEnabled(LogLevel.Debug);

    public void Publish(MqttNetLogLevel level, string source, string message, object[] parameters, Exception exception)
    {
        var mapped = level switch
        {
            MqttNetLogLevel.Verbose => LogLevel.Trace,
            MqttNetLogLevel.Info => LogLevel.Debug,
            MqttNetLogLevel.Warning => LogLevel.Warning,
            _ => LogLevel.Error,
        };

        // A client that breaks the protocol or drops its connection is the client's problem,
        // not the gateway's: MQTTnet reports those as errors, operators should not see them as such.
        if (mapped == LogLevel.Error && IsClientFault(exception))
        {
            mapped = LogLevel.Debug;
        }

        if (!_logger.IsEnabled(mapped))
        {
            return;
        }

        var text = parameters is { Length: > 0 } ? string.Format(CultureInfo.InvariantCulture, message, parameters) : message;
        Log(_logger, mapped, source, text, exception);
    }

    [LoggerMessage(EventId = 1050, Message = "{Source}: {Message}")]
    private static partial void Log(ILogger logger, LogLevel level, string source, string message, Exception? exception);

    private static bool IsClientFault(Exception? exception) => exception is
        MQTTnet.Exceptions.MqttCommunicationException or
        MQTTnet.Exceptions.MqttProtocolViolationException or
        Microsoft.AspNetCore.Connections.ConnectionResetException or
        Microsoft.AspNetCore.Connections.ConnectionAbortedException or
        IOException or
        System.Net.Sockets.SocketException or
        OperationCanceledException;
}
