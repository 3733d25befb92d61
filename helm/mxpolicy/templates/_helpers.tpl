{{/* Names and labels. */}}
{{- define "mxpolicy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mxpolicy.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The headless Service's name (leaves room for the suffix). */}}
{{- define "mxpolicy.headlessName" -}}
{{- printf "%s-headless" (include "mxpolicy.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{- define "mxpolicy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mxpolicy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mxpolicy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mxpolicy.labels" -}}
helm.sh/chart: {{ include "mxpolicy.chart" . }}
{{ include "mxpolicy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mxpolicy
{{- end }}

{{- define "mxpolicy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mxpolicy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mxpolicy.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion (toString .Values.image.tag)) }}
{{- end }}

{{/*
server.<key> -> mxpolicyd --<flag>. The flag names are mxpolicyd's contract
(server/src/app/flags.cc); tests/helm checks this table against it.
*/}}
{{- define "mxpolicy.serverFlags" -}}
trustAnchorFile: trust-anchor-file
stsCaFile: sts-ca-file
stsHttpsPort: sts-https-port
stsDiscoveryFailure: sts-discovery-failure
dnsTimeout: dns-timeout
dnsQnameMinimisation: dns-qname-minimisation
fetchConnectTimeout: fetch-connect-timeout
fetchTimeout: fetch-timeout
cacheEntries: cache-entries
policyEntries: policy-entries
cacheShards: cache-shards
maxTtl: max-ttl
tempfailTtl: tempfail-ttl
maxColdResolutions: max-cold-resolutions
shutdownGrace: shutdown-grace
maxConnectionAge: max-connection-age
logLevel: log-level
logFormat: log-format
{{- end }}

{{/*
A value as a flag text: YAML numbers arrive as float64, which would print
1000000 as 1e+06; whole numbers print as integers.
*/}}
{{- define "mxpolicy.flagText" -}}
{{- if and (kindIs "float64" .) (eq (float64 .) (floor .)) }}{{ int64 . }}{{ else }}{{ toString . }}{{ end }}
{{- end }}

{{/* Whether a value is set: not null and not "". false and 0 are set. */}}
{{- define "mxpolicy.isSet" -}}
{{- if and (not (kindIs "invalid" .)) (ne (toString .) "") }}true{{ end }}
{{- end }}

{{- define "mxpolicy.redisEnabled" -}}
{{- if or .Values.redis.url .Values.redis.urlSecret.name }}true{{ end }}
{{- end }}

{{/* Paths of the mounted Secrets and ConfigMap. */}}
{{- define "mxpolicy.tlsDir" -}}/etc/mxpolicy/tls{{- end }}
{{- define "mxpolicy.clientCADir" -}}/etc/mxpolicy/client-ca{{- end }}
{{- define "mxpolicy.unboundDir" -}}/etc/mxpolicy/unbound{{- end }}

{{/*
Secret files of the Redis tier: redis.<value> = {name, key} -> the Secret
mounted whole (no subPath, 0440) at <dir>, passed as --<flag>=<dir>/<key>.
One table, so that validation, args, mounts and volumes cannot drift apart;
use it as (include "mxpolicy.redisSecretFiles" . | fromYaml).files.
  holds: what the file holds (for messages); noRedis: why a Redis URL is needed.
*/}}
{{- define "mxpolicy.redisSecretFiles" -}}
files:
  - value: passwordSecret
    volume: redis-password
    dir: /etc/mxpolicy/redis-password
    flag: redis-password-file
    holds: password
    noRedis: there is no Redis to authenticate to
  - value: hmacKeySecret
    volume: redis-hmac-key
    dir: /etc/mxpolicy/redis-hmac-key
    flag: redis-hmac-key-file
    holds: HMAC key
    noRedis: there are no Redis values to authenticate
{{- end }}

{{/* A secret file flag: --<flag>=<dir>/<key> of one redisSecretFiles entry
(dict "file" <entry> "secret" <its {name, key} value>) as a quoted arg. */}}
{{- define "mxpolicy.secretFileFlag" -}}
{{- printf "--%s=%s/%s" .file.flag .file.dir (toString .secret.key) | quote }}
{{- end }}

{{/* The port Kubernetes' gRPC probes use. */}}
{{- define "mxpolicy.probePort" -}}
{{- if .Values.tls.enabled }}{{ int .Values.ports.health }}{{ else }}{{ int .Values.ports.grpc }}{{ end }}
{{- end }}

{{/*
Refuses inconsistent values with a message naming the value to fix (the
same rules mxpolicyd applies to its flags, caught at install time).
*/}}
{{- define "mxpolicy.validate" -}}
{{- $known := include "mxpolicy.serverFlags" . | fromYaml }}
{{- range $key, $_ := .Values.server }}
{{- if not (hasKey $known $key) }}
{{- fail (printf "server.%s is not an mxpolicyd flag value (known: %s; TLS, Redis, listeners and the unbound config have their own sections)" $key (keys $known | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) }}
{{- fail "tls.enabled needs tls.secretName (a kubernetes.io/tls Secret with tls.crt and tls.key)" }}
{{- end }}
{{- if and .Values.tls.clientCA.secretName (not .Values.tls.enabled) }}
{{- fail "tls.clientCA.secretName (mTLS) needs tls.enabled" }}
{{- end }}
{{- if and .Values.tls.adminIdentities (not .Values.tls.clientCA.secretName) }}
{{- fail "tls.adminIdentities needs tls.clientCA.secretName: identities come from client certificates" }}
{{- end }}
{{- if and .Values.redis.url .Values.redis.urlSecret.name }}
{{- fail "set redis.url or redis.urlSecret.name, not both" }}
{{- end }}
{{- $redisEnabled := include "mxpolicy.redisEnabled" . }}
{{- range $f := (include "mxpolicy.redisSecretFiles" . | fromYaml).files }}
{{- $secret := index $.Values.redis $f.value }}
{{- if $secret.name }}
{{- if not $redisEnabled }}
{{- fail (printf "redis.%s.name needs redis.url or redis.urlSecret.name: without a Redis URL %s" $f.value $f.noRedis) }}
{{- end }}
{{- if not (regexMatch "^[-._a-zA-Z0-9]+$" (toString $secret.key)) }}
{{- fail (printf "redis.%s.key=%q: want the key of the %s in the Secret (letters, digits, -, _, .)" $f.value (toString $secret.key) $f.holds) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (include "mxpolicy.isSet" .Values.podDisruptionBudget.minAvailable) (include "mxpolicy.isSet" .Values.podDisruptionBudget.maxUnavailable) }}
{{- fail "set podDisruptionBudget.minAvailable or podDisruptionBudget.maxUnavailable, not both" }}
{{- end }}
{{- if not (has .Values.podAntiAffinity.type (list "soft" "hard")) }}
{{- fail "podAntiAffinity.type: want soft or hard" }}
{{- end }}
{{- /* Durations: Go/absl syntax (1h30m, 500ms), checked here rather than
at pod start. */}}
{{- $durations := dict "server.dnsTimeout" .Values.server.dnsTimeout "server.fetchConnectTimeout" .Values.server.fetchConnectTimeout "server.fetchTimeout" .Values.server.fetchTimeout "server.maxTtl" .Values.server.maxTtl "server.tempfailTtl" .Values.server.tempfailTtl "server.shutdownGrace" .Values.server.shutdownGrace "server.maxConnectionAge" .Values.server.maxConnectionAge "tls.checkInterval" .Values.tls.checkInterval "redis.timeout" .Values.redis.timeout }}
{{- range $key := keys $durations | sortAlpha }}
{{- $v := index $durations $key }}
{{- if and (include "mxpolicy.isSet" $v) (not (regexMatch "^([0-9.]+(ns|us|ms|s|m|h))+$" (toString $v))) }}
{{- fail (printf "%s=%v: want a duration with a unit, like 30s, 5m or 1h30m" $key $v) }}
{{- end }}
{{- end }}
{{- /* The PDB must leave room for a voluntary disruption. */}}
{{- if and .Values.podDisruptionBudget.enabled (include "mxpolicy.isSet" .Values.podDisruptionBudget.minAvailable) (not (include "mxpolicy.isSet" .Values.podDisruptionBudget.maxUnavailable)) }}
{{- $min := .Values.podDisruptionBudget.minAvailable }}
{{- if regexMatch "^[0-9]+$" (include "mxpolicy.flagText" $min) }}
{{- $replicas := int .Values.replicaCount }}
{{- $from := "replicaCount" }}
{{- if .Values.autoscaling.enabled }}
{{- $replicas = int .Values.autoscaling.minReplicas }}
{{- $from = "autoscaling.minReplicas" }}
{{- end }}
{{- if ge (int (include "mxpolicy.flagText" $min)) $replicas }}
{{- fail (printf "podDisruptionBudget.minAvailable (%s) must be below %s (%d): otherwise no node can ever be drained" (include "mxpolicy.flagText" $min) $from $replicas) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* listenHost: an IPv4 address or a bracketed IPv6 address. */}}
{{- if not (regexMatch "^([0-9.]+|\\[[0-9a-fA-F:.]+\\])$" (toString .Values.listenHost)) }}
{{- fail (printf "listenHost=%v: want an IPv4 address (0.0.0.0) or a bracketed IPv6 address ([::])" .Values.listenHost) }}
{{- end }}
{{- if not (kindIs "invalid" .Values.preStopSleepSeconds) }}
{{- if not (regexMatch "^[0-9]+$" (include "mxpolicy.flagText" .Values.preStopSleepSeconds)) }}
{{- fail (printf "preStopSleepSeconds=%v: want whole seconds (0: no preStop hook)" .Values.preStopSleepSeconds) }}
{{- end }}
{{- end }}
{{- /* terminationGracePeriodSeconds must outlast the preStop sleep plus
--shutdown-grace: Kubernetes counts both against it. */}}
{{- $grace := 10 }}
{{- $g := toString (default "" .Values.server.shutdownGrace) }}
{{- if $g }}
{{- $parts := regexFindAll "[0-9]+(h|m|s)" $g -1 }}
{{- if or (not $parts) (ne (join "" $parts) $g) }}
{{- fail (printf "server.shutdownGrace=%s: want whole hours, minutes and seconds, like 20s or 1m30s (the chart compares it with terminationGracePeriodSeconds)" $g) }}
{{- end }}
{{- $grace = 0 }}
{{- range $parts }}
{{- $n := trimSuffix "h" (trimSuffix "m" (trimSuffix "s" .)) | atoi }}
{{- if hasSuffix "h" . }}
{{- $grace = add $grace (mul $n 3600) }}
{{- else if hasSuffix "m" . }}
{{- $grace = add $grace (mul $n 60) }}
{{- else }}
{{- $grace = add $grace $n }}
{{- end }}
{{- end }}
{{- end }}
{{- $preStop := int (include "mxpolicy.preStopSleep" .) }}
{{- if le (int .Values.terminationGracePeriodSeconds) (add $preStop $grace) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed preStopSleepSeconds (%d) + server.shutdownGrace (%ds)" .Values.terminationGracePeriodSeconds $preStop $grace) }}
{{- end }}
{{- end }}

{{/* The preStop sleep in seconds (0: none). */}}
{{- define "mxpolicy.preStopSleep" -}}
{{- if kindIs "invalid" .Values.preStopSleepSeconds }}0{{ else }}{{ include "mxpolicy.flagText" .Values.preStopSleepSeconds }}{{ end }}
{{- end }}

{{/* The Redis port for the NetworkPolicy: the URL's when redis.url names
one, redis.port otherwise (always with redis.urlSecret: the chart cannot
read the Secret). */}}
{{- define "mxpolicy.redisPort" -}}
{{- $port := int .Values.redis.port }}
{{- if .Values.redis.url }}
{{- $hostport := regexReplaceAll "^[a-zA-Z][a-zA-Z0-9+.-]*://([^/]*@)?" .Values.redis.url "" }}
{{- $hostport = regexReplaceAll "[/?#].*$" $hostport "" }}
{{- $p := regexFind ":[0-9]+$" $hostport }}
{{- if $p }}
{{- $port = trimPrefix ":" $p | atoi }}
{{- end }}
{{- end }}
{{- $port }}
{{- end }}

{{/* The listen address host:port of a listener. */}}
{{- define "mxpolicy.listenAddr" -}}
{{- printf "%s:%d" (toString .root.Values.listenHost) (int .port) }}
{{- end }}

{{/* mxpolicyd's arguments, one per line as a YAML list. */}}
{{- define "mxpolicy.args" -}}
- {{ printf "--listen=%s" (include "mxpolicy.listenAddr" (dict "root" . "port" .Values.ports.grpc)) | quote }}
{{- if .Values.metrics.enabled }}
- {{ printf "--metrics-listen=%s" (include "mxpolicy.listenAddr" (dict "root" . "port" .Values.ports.metrics)) | quote }}
{{- else }}
- "--metrics-listen="
{{- end }}
{{- $server := .Values.server }}
{{- range $key, $flag := include "mxpolicy.serverFlags" . | fromYaml }}
{{- $v := index $server $key }}
{{- if include "mxpolicy.isSet" $v }}
- {{ printf "--%s=%s" $flag (include "mxpolicy.flagText" $v) | quote }}
{{- end }}
{{- end }}
{{- if .Values.unbound.config }}
- {{ printf "--unbound-config=%s/unbound.conf" (include "mxpolicy.unboundDir" .) | quote }}
{{- end }}
{{- if .Values.tls.enabled }}
- {{ printf "--tls-cert=%s/tls.crt" (include "mxpolicy.tlsDir" .) | quote }}
- {{ printf "--tls-key=%s/tls.key" (include "mxpolicy.tlsDir" .) | quote }}
- {{ printf "--health-listen=%s" (include "mxpolicy.listenAddr" (dict "root" . "port" .Values.ports.health)) | quote }}
{{- if .Values.tls.clientCA.secretName }}
- {{ printf "--tls-client-ca=%s/%s" (include "mxpolicy.clientCADir" .) .Values.tls.clientCA.key | quote }}
{{- end }}
{{- if include "mxpolicy.isSet" .Values.tls.checkInterval }}
- {{ printf "--tls-check-interval=%s" (include "mxpolicy.flagText" .Values.tls.checkInterval) | quote }}
{{- end }}
{{- if .Values.tls.adminIdentities }}
- {{ printf "--admin-identity=%s" (join "," .Values.tls.adminIdentities) | quote }}
{{- end }}
{{- end }}
{{- if .Values.redis.urlSecret.name }}
- "--redis=$(REDIS_URL)"
{{- else if .Values.redis.url }}
- {{ printf "--redis=%s" .Values.redis.url | quote }}
{{- end }}
{{- range $f := (include "mxpolicy.redisSecretFiles" . | fromYaml).files }}
{{- $secret := index $.Values.redis $f.value }}
{{- if $secret.name }}
- {{ include "mxpolicy.secretFileFlag" (dict "file" $f "secret" $secret) }}
{{- end }}
{{- end }}
{{- if include "mxpolicy.isSet" .Values.redis.timeout }}
- {{ printf "--redis-timeout=%s" (include "mxpolicy.flagText" .Values.redis.timeout) | quote }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}
