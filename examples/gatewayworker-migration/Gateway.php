<?php
// A GatewayWorker-shaped client of fanout's server API: the static calls a GatewayWorker app makes
// (Gateway::sendToUid, sendToGroup, joinGroup, ...) as HTTP POSTs to the relay's admin listener.
// Each call is one request (or, inside Gateway::batch(), one request for many sends and joins).
// docs/migrating-from-gatewayworker.md maps every GatewayWorker call; the API is docs/server-api.md.
//
//   Gateway::$apiUrl = 'http://127.0.0.1:8081';   // the relay's admin listener
//   Gateway::$apiKey = getenv('FANOUT_API_KEY');
//   Gateway::sendToUid('alice', ['type' => 'hello']);
//   Gateway::sendToGroup('room:lobby', ['type' => 'say', 'text' => 'hi'], [$exceptClientId]);
//
// Differences from GatewayWorker: a message is a JSON value (an array/object is sent as its JSON,
// a string as its text); groups are fanout topics; client ids are strings like "n1-1f".

final class Gateway
{
    public static string $apiUrl = 'http://127.0.0.1:8081';
    public static string $apiKey = '';
    public static int $timeoutMs = 3000;

    /** @var array|null commands collected by batch() */
    private static ?array $batch = null;

    // ---- sends (GatewayWorker: sendToAll, sendToClient, sendToUid, sendToGroup)
    public static function sendToAll($message, array $excludeClientIds = []): int
    {
        return self::delivered('broadcast', ['data' => $message, 'exclude' => $excludeClientIds]);
    }

    public static function sendToClient(string $clientId, $message): int
    {
        return self::delivered('send_to_client', ['client' => $clientId, 'data' => $message]);
    }

    public static function sendToUid(string $uid, $message): int
    {
        return self::delivered('send_to_user', ['user' => $uid, 'data' => $message]);
    }

    public static function sendToGroup(string $group, $message, array $excludeClientIds = []): int
    {
        return self::delivered('publish', ['topic' => $group, 'data' => $message, 'exclude' => $excludeClientIds]);
    }

    // ---- users and groups (bindUid, unbindUid, joinGroup, leaveGroup, closeClient)
    public static function bindUid(string $clientId, string $uid): bool
    {
        return (bool)(self::call('bind', ['client' => $clientId, 'user' => $uid])['ok'] ?? false);
    }

    public static function unbindUid(string $clientId): bool
    {
        return (bool)(self::call('unbind', ['client' => $clientId])['ok'] ?? false);
    }

    public static function joinGroup(string $clientId, string $group): bool
    {
        return (bool)(self::call('join', ['client' => $clientId, 'topic' => $group])['ok'] ?? false);
    }

    public static function leaveGroup(string $clientId, string $group): bool
    {
        return (bool)(self::call('leave', ['client' => $clientId, 'topic' => $group])['ok'] ?? false);
    }

    /** Closes the connection (close code 1000, `$reason` as the close reason); true when it was here. */
    public static function closeClient(string $clientId, string $reason = ''): bool
    {
        return (int)(self::call('disconnect', ['client' => $clientId, 'reason' => $reason])['closed'] ?? 0) > 0;
    }

    /** Every connection of the user; how many were closed. */
    public static function closeUid(string $uid, string $reason = ''): int
    {
        return (int)(self::call('disconnect', ['user' => $uid, 'reason' => $reason])['closed'] ?? 0);
    }

    // ---- queries (isUidOnline, getClientIdByUid, getClientCountByGroup, getClientIdListByGroup,
    // getUidListByGroup, getAllClientIdCount): GET, answered by the node the API runs on (and, with
    // [redis], what it knows of the others: docs/server-api.md)
    public static function isUidOnline(string $uid): bool
    {
        return (bool)(self::get('/api/online', ['user' => $uid])['online'] ?? false);
    }

    public static function getClientIdByUid(string $uid): array
    {
        return self::get('/api/online', ['user' => $uid])['clients'] ?? [];
    }

    public static function getClientCountByGroup(string $group): int
    {
        return (int)(self::get('/api/presence', ['topic' => $group])['connection_count'] ?? 0);
    }

    public static function getClientIdListByGroup(string $group): array
    {
        return self::get('/api/presence', ['topic' => $group, 'clients' => 1])['clients'] ?? [];
    }

    /** User ids in a group; fanout also says how many connections each has there. */
    public static function getUidListByGroup(string $group): array
    {
        return array_column(self::get('/api/presence', ['topic' => $group])['users'] ?? [], 'user');
    }

    public static function getAllClientIdCount(): int
    {
        return (int)(self::get('/api/info', [])['connections'] ?? 0);
    }

    /**
     * Many calls in one request: Gateway::batch(function () { Gateway::sendToUid(..); ... });
     * returns one result per call, in order (the calls inside return 0/false).
     */
    public static function batch(callable $calls): array
    {
        self::$batch = [];
        try {
            $calls();
            $commands = self::$batch;
        } finally {
            self::$batch = null;
        }
        return self::post('/api/batch', ['commands' => $commands])['results'] ?? [];
    }

    // ---- the transport
    private static function delivered(string $cmd, array $fields): int
    {
        return (int)(self::call($cmd, $fields)['delivered'] ?? 0);
    }

    private static function call(string $cmd, array $fields): array
    {
        if (self::$batch !== null) {
            self::$batch[] = ['cmd' => $cmd] + $fields;
            return [];
        }
        return self::post('/api/' . $cmd, $fields);
    }

    private static function get(string $path, array $query): array
    {
        return self::request($path . ($query ? '?' . http_build_query($query) : ''), null);
    }

    private static function post(string $path, array $body): array
    {
        return self::request($path, json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE));
    }

    private static function request(string $path, ?string $body): array
    {
        $ch = curl_init(rtrim(self::$apiUrl, '/') . $path);
        curl_setopt_array($ch, [
            CURLOPT_HTTPHEADER => ['Content-Type: application/json', 'Authorization: Bearer ' . self::$apiKey],
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_TIMEOUT_MS => self::$timeoutMs,
        ]);
        if ($body !== null) {
            curl_setopt_array($ch, [CURLOPT_POST => true, CURLOPT_POSTFIELDS => $body]);
        }
        $text = curl_exec($ch);
        $status = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
        $error = curl_error($ch);
        curl_close($ch);
        if ($text === false) {
            throw new RuntimeException("fanout API $path: $error");
        }
        $answer = json_decode($text, true);
        if ($status !== 200 || !is_array($answer)) {
            throw new RuntimeException("fanout API $path: HTTP $status: $text");
        }
        return $answer;
    }
}
