{{/* Names, labels and the environment each service receives. */}}

{{- define "shoal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every object's name, at most 40 characters: the longest suffix
the chart appends is "-cockroachdb-headless" (21, a Service: <= 63), and a
StatefulSet name must stay <= 52 so its pods' controller-revision-hash label
(<name>-<10-char hash>) fits in 63 (docs/kubernetes.md "Names"). A longer
prefix is cut and ends in a hash of the whole, so two long release names that
share their first 33 characters still get different objects. Dots (allowed
in release names) become dashes and a leading digit gets "shoal-" in front:
Service names are DNS-1035 labels.
*/}}
{{- define "shoal.fullname" -}}
{{- $full := "" -}}
{{- if .Values.fullnameOverride -}}
{{- $full = .Values.fullnameOverride -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- $full = .Release.Name -}}
{{- else -}}
{{- $full = printf "%s-%s" .Release.Name $name -}}
{{- end -}}
{{- end -}}
{{- $full = regexReplaceAll "[^a-z0-9-]" (lower $full) "-" -}}
{{- if not (regexMatch "^[a-z]" $full) -}}
{{- $full = printf "shoal-%s" $full -}}
{{- end -}}
{{- if gt (len $full) 40 -}}
{{- $full = printf "%s-%s" ($full | trunc 33 | trimSuffix "-") ($full | sha256sum | trunc 6) -}}
{{- end -}}
{{- $full -}}
{{- end -}}

{{/* Name of one component's objects: shoal.component (dict "root" $ "component" "gateway"); fits by shoal.fullname's bound. */}}
{{- define "shoal.componentName" -}}
{{- printf "%s-%s" (include "shoal.fullname" .root) .component -}}
{{- end -}}

{{- define "shoal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shoal.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "shoal.labels" -}}
{{ include "shoal.selectorLabels" . }}
app.kubernetes.io/part-of: shoal
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Labels of StatefulSet pods: without the chart and app versions, so an upgrade
that changes nothing else does not restart (and fail over) the stores.
*/}}
{{- define "shoal.statefulPodLabels" -}}
{{ include "shoal.selectorLabels" . }}
app.kubernetes.io/part-of: shoal
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "shoal.image" -}}
{{- $override := index .root.Values.image.overrides (.service | replace "announce-gateway" "announceGateway" | replace "storage-api" "storageApi" | replace "gc-worker" "gcWorker") -}}
{{- if $override -}}
{{- $override -}}
{{- else -}}
{{- printf "%s-%s:%s" .root.Values.image.repositoryPrefix .service (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* A store's image: repository:tag, pinned by @digest when one is given. */}}
{{- define "shoal.storeImage" -}}
{{- .repository }}:{{ .tag }}{{ with .digest }}@{{ . }}{{ end -}}
{{- end -}}

{{/* The gc-worker's leader-election Lease: one per release unless named. */}}
{{- define "shoal.leaseName" -}}
{{- default (include "shoal.componentName" (dict "root" . "component" "gc-worker")) .Values.gcWorker.leaseName -}}
{{- end -}}

{{- define "shoal.secretName" -}}
{{- include "shoal.componentName" (dict "root" . "component" "secrets") -}}
{{- end -}}

{{/*
A generated secret that survives upgrades: reuse the value already in the
cluster (lookup returns nothing under `helm template`, so a fresh value then).
Args: root, key, length.
*/}}
{{- define "shoal.persistentRandom" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace (include "shoal.secretName" .root) -}}
{{- if and $existing $existing.data (hasKey $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else if .hex -}}
{{- $raw := randAlphaNum 64 | sha256sum -}}
{{- $raw -}}
{{- else -}}
{{- randAlphaNum (int .length) -}}
{{- end -}}
{{- end -}}

{{/*
The keys and values of the chart's own Secret, as JSON: what is not named as
an existing Secret. secrets.yaml renders it; the Redis pods carry a checksum of
their passwords from it.
*/}}
{{- define "shoal.secretData" -}}
{{- $data := dict -}}
{{- if not .Values.storageApiToken.existingSecret -}}
{{- $_ := set $data "storage-api-token" (default (include "shoal.persistentRandom" (dict "root" . "key" "storage-api-token" "length" 48)) .Values.storageApiToken.value) -}}
{{- end -}}
{{- if and .Values.storageApiAdminToken.enabled (not .Values.storageApiAdminToken.existingSecret) -}}
{{- $_ := set $data "storage-api-admin-token" (default (include "shoal.persistentRandom" (dict "root" . "key" "storage-api-admin-token" "length" 48)) .Values.storageApiAdminToken.value) -}}
{{- end -}}
{{- if not .Values.gateway.udpConnectionIdSecret.existingSecret -}}
{{- $_ := set $data "udp-connection-id-secret" (default (include "shoal.persistentRandom" (dict "root" . "key" "udp-connection-id-secret" "hex" true)) .Values.gateway.udpConnectionIdSecret.value) -}}
{{- end -}}
{{- if and .Values.redis.enabled (not .Values.redis.auth.existingSecret) -}}
{{- $_ := set $data "redis-password" (default (include "shoal.persistentRandom" (dict "root" . "key" "redis-password" "length" 32)) .Values.redis.auth.password) -}}
{{- $_ := set $data "redis-sentinel-password" (default (include "shoal.persistentRandom" (dict "root" . "key" "redis-sentinel-password" "length" 32)) .Values.redis.auth.sentinelPassword) -}}
{{- end -}}
{{- if and .Values.externalRedis.enabled (not .Values.externalRedis.existingSecret) -}}
{{- with .Values.externalRedis.password }}{{ $_ := set $data "redis-password" . }}{{ end -}}
{{- with .Values.externalRedis.sentinelPassword }}{{ $_ := set $data "redis-sentinel-password" . }}{{ end -}}
{{- end -}}
{{- if .Values.cockroachdb.enabled -}}
{{- $_ := set $data "database-url" (include "shoal.cockroachURL" .) -}}
{{- else if and .Values.externalDatabase.enabled (not .Values.externalDatabase.existingSecret) -}}
{{- $_ := set $data "database-url" .Values.externalDatabase.url -}}
{{- end -}}
{{- toJson $data -}}
{{- end -}}

{{/* secretKeyRef of a value that is either inline (our Secret) or in an existing Secret. Args: root, existing, existingKey, ownKey. */}}
{{- define "shoal.secretRef" -}}
secretKeyRef:
  {{- if .existing }}
  name: {{ .existing }}
  key: {{ .existingKey }}
  {{- else }}
  name: {{ include "shoal.secretName" .root }}
  key: {{ .ownKey }}
  {{- end }}
{{- end -}}

{{- define "shoal.redisName" -}}
{{- include "shoal.componentName" (dict "root" . "component" "redis") -}}
{{- end -}}

{{- define "shoal.cockroachName" -}}
{{- include "shoal.componentName" (dict "root" . "component" "cockroachdb") -}}
{{- end -}}

{{/*
A CockroachDB certificate Secret: the one given, else <cockroachdb>-<which>-tls,
written by its cert-manager Certificate or generated by the chart
(cockroachdb/tls-secrets.yaml). Args: root, which (node, root, user).
*/}}
{{- define "shoal.cockroachTlsSecret" -}}
{{- $tls := .root.Values.cockroachdb.tls -}}
{{- $given := get (dict "node" $tls.nodeSecret "root" $tls.rootClientSecret "user" $tls.userClientSecret) .which -}}
{{- if and $given (not $tls.certManager.enabled) -}}
{{- $given -}}
{{- else -}}
{{- printf "%s-%s-tls" (include "shoal.cockroachName" .root) .which -}}
{{- end -}}
{{- end -}}

{{/* "true" when the chart generates CockroachDB's CA and certificates: TLS on, no Secrets given, no cert-manager. */}}
{{- define "shoal.cockroachTlsGenerated" -}}
{{- $d := .Values.cockroachdb -}}
{{- if and $d.enabled $d.tls.enabled (not $d.tls.certManager.enabled) (not $d.tls.nodeSecret) (not $d.tls.rootClientSecret) (not $d.tls.userClientSecret) -}}true{{- end -}}
{{- end -}}

{{- define "shoal.storageApiURL" -}}
{{- printf "http://%s:%d" (include "shoal.componentName" (dict "root" . "component" "storage-api")) (int .Values.storageApi.port) -}}
{{- end -}}

{{- define "shoal.usesRedis" -}}
{{- if or (eq .Values.storageApi.peerStore "redis") (eq .Values.storageApi.dataStore "redis") -}}true{{- end -}}
{{- end -}}

{{- define "shoal.usesPostgres" -}}
{{- if or (eq .Values.storageApi.peerStore "postgres") (eq .Values.storageApi.dataStore "postgres") -}}true{{- end -}}
{{- end -}}

{{/* Refuses combinations the schema cannot express. */}}
{{- define "shoal.validate" -}}
{{- if and .Values.redis.enabled .Values.externalRedis.enabled -}}
{{- fail "redis.enabled and externalRedis.enabled are both true: choose one" -}}
{{- end -}}
{{- if and .Values.cockroachdb.enabled .Values.externalDatabase.enabled -}}
{{- fail "cockroachdb.enabled and externalDatabase.enabled are both true: choose one" -}}
{{- end -}}
{{- if and (include "shoal.usesRedis" .) (not .Values.redis.enabled) (not .Values.externalRedis.enabled) -}}
{{- fail "storageApi.peerStore or dataStore is redis: enable redis or externalRedis" -}}
{{- end -}}
{{- if and (include "shoal.usesPostgres" .) (not .Values.cockroachdb.enabled) (not .Values.externalDatabase.enabled) -}}
{{- fail "storageApi.peerStore or dataStore is postgres: enable cockroachdb or externalDatabase" -}}
{{- end -}}
{{- if and .Values.externalDatabase.enabled (not .Values.externalDatabase.url) (not .Values.externalDatabase.existingSecret) -}}
{{- fail "externalDatabase needs url or existingSecret" -}}
{{- end -}}
{{- $backup := .Values.cockroachdb.backup -}}
{{- if and .Values.cockroachdb.enabled $backup.enabled (not $backup.destination) -}}
{{- fail "cockroachdb.backup.enabled needs cockroachdb.backup.destination (e.g. s3://bucket/shoal?AUTH=implicit)" -}}
{{- end -}}
{{- range $key, $v := dict "destination" $backup.destination "recurring" $backup.recurring "fullBackup" $backup.fullBackup -}}
{{- if regexMatch "['\"`$\\\\]" $v -}}
{{- fail (printf "cockroachdb.backup.%s may not contain quotes, backquotes, $ or backslashes (it is quoted into SQL in a shell script)" $key) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.redis.enabled .Values.redis.backup.enabled (ne .Values.storageApi.dataStore "redis") -}}
{{- fail (printf "redis.backup.enabled: the chart's Redis holds only peers (ephemeral; clients re-announce) while storageApi.dataStore is %s, which keeps the durable data: back that up (cockroachdb.backup), or set storageApi.dataStore redis" .Values.storageApi.dataStore) -}}
{{- end -}}
{{- if and .Values.gateway.tls.enabled (not .Values.gateway.tls.secretName) -}}
{{- fail "gateway.tls.enabled needs gateway.tls.secretName: a Secret with tls.crt and tls.key (kubernetes.io/tls, as cert-manager writes it)" -}}
{{- end -}}
{{- if and .Values.gateway.tls.enabled .Values.gateway.httpEnabled (eq (int .Values.gateway.tls.httpsPort) (int .Values.gateway.port)) -}}
{{- fail "gateway.tls.httpsPort must differ from gateway.port while gateway.httpEnabled is true (both are TCP)" -}}
{{- end -}}
{{- $tls := .Values.cockroachdb.tls -}}
{{- if and .Values.cockroachdb.enabled $tls.enabled $tls.certManager.enabled -}}
{{- if not $tls.certManager.issuerRef.name -}}
{{- fail "cockroachdb.tls.certManager.enabled needs cockroachdb.tls.certManager.issuerRef.name (an Issuer or ClusterIssuer that signs with one CA)" -}}
{{- end -}}
{{- if or $tls.nodeSecret $tls.rootClientSecret $tls.userClientSecret -}}
{{- fail "cockroachdb.tls.certManager.enabled names its own Secrets: leave cockroachdb.tls.nodeSecret, rootClientSecret and userClientSecret empty" -}}
{{- end -}}
{{- else if and .Values.cockroachdb.enabled $tls.enabled (or $tls.nodeSecret $tls.rootClientSecret $tls.userClientSecret) (not (and $tls.nodeSecret $tls.rootClientSecret $tls.userClientSecret)) -}}
{{- fail "cockroachdb.tls: give all of nodeSecret, rootClientSecret and userClientSecret (one CA signs them), or none (the chart generates them, or cert-manager issues them with cockroachdb.tls.certManager.enabled)" -}}
{{- end -}}
{{- if and .Values.redis.enabled (gt (int .Values.redis.sentinel.quorum) (int .Values.redis.replicas)) -}}
{{- fail "redis.sentinel.quorum cannot exceed redis.replicas" -}}
{{- end -}}
{{- if and (not .Values.gateway.httpEnabled) (not .Values.gateway.udpEnabled) (not .Values.gateway.tls.enabled) -}}
{{- fail "gateway.httpEnabled, gateway.udpEnabled and gateway.tls.enabled are all false: the gateway would serve no announces; enable at least one" -}}
{{- end -}}
{{- if and .Values.gateway.service.split (ne .Values.gateway.service.type "LoadBalancer") -}}
{{- fail (printf "gateway.service.split makes two LoadBalancer Services: it needs gateway.service.type LoadBalancer (is %s)" .Values.gateway.service.type) -}}
{{- end -}}
{{- $hpa := .Values.gateway.autoscaling -}}
{{- if and $hpa.enabled (gt (int $hpa.minReplicas) (int $hpa.maxReplicas)) -}}
{{- fail (printf "gateway.autoscaling.minReplicas (%d) is above gateway.autoscaling.maxReplicas (%d)" (int $hpa.minReplicas) (int $hpa.maxReplicas)) -}}
{{- end -}}
{{- if and $hpa.enabled (eq (int $hpa.targetCPUUtilizationPercentage) 0) (eq (int $hpa.announcesPerSecondPerPod) 0) -}}
{{- fail "gateway.autoscaling has no target: set gateway.autoscaling.targetCPUUtilizationPercentage or gateway.autoscaling.announcesPerSecondPerPod above 0" -}}
{{- end -}}
{{- if and (has "memory" (list .Values.storageApi.peerStore .Values.storageApi.dataStore)) (gt (int .Values.storageApi.replicas) 1) -}}
{{- fail (printf "storageApi.peerStore or storageApi.dataStore is memory, which lives in one storage-api process: storageApi.replicas must be 1 (is %d), or choose redis/postgres" (int .Values.storageApi.replicas)) -}}
{{- end -}}
{{- /* A digest in a tag renders repo:sha256:... (or repo:@sha256:...), which no registry resolves. */ -}}
{{- range $key, $tag := dict "image.tag" .Values.image.tag "redis.image.tag" .Values.redis.image.tag "cockroachdb.image.tag" .Values.cockroachdb.image.tag -}}
{{- if regexMatch "[@:]|^sha256" $tag -}}
{{- if eq $key "image.tag" -}}
{{- fail (printf "image.tag %q is a digest, not a tag: give full references with digests in image.overrides (announceGateway, storageApi, gcWorker)" $tag) -}}
{{- else -}}
{{- fail (printf "%s %q is a digest, not a tag: keep the tag and put sha256:<hex> in %s" $key $tag ($key | replace ".tag" ".digest")) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if .Values.gitops -}}
{{- $missing := list -}}
{{- if not (or .Values.storageApiToken.value .Values.storageApiToken.existingSecret) -}}
{{- $missing = append $missing "storageApiToken.value or .existingSecret" -}}
{{- end -}}
{{- if and .Values.storageApiAdminToken.enabled (not (or .Values.storageApiAdminToken.value .Values.storageApiAdminToken.existingSecret)) -}}
{{- $missing = append $missing "storageApiAdminToken.value or .existingSecret" -}}
{{- end -}}
{{- if not (or .Values.gateway.udpConnectionIdSecret.value .Values.gateway.udpConnectionIdSecret.existingSecret) -}}
{{- $missing = append $missing "gateway.udpConnectionIdSecret.value or .existingSecret" -}}
{{- end -}}
{{- if and .Values.redis.enabled (not .Values.redis.auth.existingSecret) (not (and .Values.redis.auth.password .Values.redis.auth.sentinelPassword)) -}}
{{- $missing = append $missing "redis.auth.password and redis.auth.sentinelPassword, or redis.auth.existingSecret" -}}
{{- end -}}
{{- if include "shoal.cockroachTlsGenerated" . -}}
{{- $missing = append $missing "cockroachdb.tls.nodeSecret, cockroachdb.tls.rootClientSecret and cockroachdb.tls.userClientSecret (CockroachDB's certificates; or cockroachdb.tls.certManager.enabled, or cockroachdb.tls.enabled false for a dev cluster without authentication)" -}}
{{- end -}}
{{- if $missing -}}
{{- fail (printf "gitops is true, so nothing is generated (helm template sees no cluster: a generated secret would change on every render and roll every pod); give %s" (join "; " $missing)) -}}
{{- end -}}
{{- end -}}
{{- $jwt := .Values.gateway.policy.jwt -}}
{{- if and $jwt.required (not $jwt.issuer) -}}
{{- fail "gateway.policy.jwt.required needs gateway.policy.jwt.issuer (the tokens' iss)" -}}
{{- end -}}
{{- if and $jwt.required (eq (empty $jwt.jwksUrl) (empty $jwt.jwks)) -}}
{{- fail "gateway.policy.jwt.required needs exactly one of gateway.policy.jwt.jwksUrl and gateway.policy.jwt.jwks" -}}
{{- end -}}
{{- if and $jwt.jwks (not (kindIs "slice" (get (fromJson $jwt.jwks) "keys"))) -}}
{{- fail "gateway.policy.jwt.jwks must be a JWKS document: JSON with a keys array ({\"keys\":[...]})" -}}
{{- end -}}
{{- end -}}

{{/* REDIS_* for storage-api. */}}
{{- define "shoal.redisEnv" -}}
{{- if .Values.redis.enabled }}
{{- $name := include "shoal.redisName" . }}
{{- $sentinels := list }}
{{- range $i := until (int .Values.redis.replicas) }}
{{- $sentinels = append $sentinels (printf "%s-%d.%s-headless.%s.svc:26379" $name $i $name $.Release.Namespace) }}
{{- end }}
- name: REDIS_MODE
  value: sentinel
- name: REDIS_SENTINELS
  value: {{ join "," $sentinels | quote }}
- name: REDIS_MASTER_NAME
  value: {{ .Values.redis.masterName | quote }}
- name: REDIS_PASSWORD
  valueFrom:
    {{- include "shoal.secretRef" (dict "root" . "existing" .Values.redis.auth.existingSecret "existingKey" .Values.redis.auth.existingSecretPasswordKey "ownKey" "redis-password") | nindent 4 }}
- name: REDIS_SENTINEL_PASSWORD
  valueFrom:
    {{- include "shoal.secretRef" (dict "root" . "existing" .Values.redis.auth.existingSecret "existingKey" .Values.redis.auth.existingSecretSentinelPasswordKey "ownKey" "redis-sentinel-password") | nindent 4 }}
{{- else if .Values.externalRedis.enabled }}
{{- $r := .Values.externalRedis }}
- name: REDIS_MODE
  value: {{ $r.mode | quote }}
{{- if $r.addresses }}
- name: REDIS_ADDRESSES
  value: {{ join "," $r.addresses | quote }}
{{- end }}
{{- if $r.sentinels }}
- name: REDIS_SENTINELS
  value: {{ join "," $r.sentinels | quote }}
{{- end }}
- name: REDIS_MASTER_NAME
  value: {{ $r.masterName | quote }}
{{- if $r.ringShards }}
- name: REDIS_RING_SHARDS
  value: {{ join "," $r.ringShards | quote }}
{{- end }}
- name: REDIS_TLS
  value: {{ $r.tls | quote }}
{{- if $r.username }}
- name: REDIS_USERNAME
  value: {{ $r.username | quote }}
{{- end }}
{{- if or $r.password $r.existingSecret }}
- name: REDIS_PASSWORD
  valueFrom:
    {{- include "shoal.secretRef" (dict "root" . "existing" $r.existingSecret "existingKey" $r.existingSecretPasswordKey "ownKey" "redis-password") | nindent 4 }}
{{- end }}
{{- if or $r.sentinelPassword (and $r.existingSecret (eq $r.mode "sentinel")) }}
- name: REDIS_SENTINEL_PASSWORD
  valueFrom:
    {{- include "shoal.secretRef" (dict "root" . "existing" $r.existingSecret "existingKey" $r.existingSecretSentinelPasswordKey "ownKey" "redis-sentinel-password") | nindent 4 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* DATABASE_URL, DATABASE_DIALECT and PG_* for storage-api and the migration Job. */}}
{{- define "shoal.databaseEnv" -}}
{{- if .Values.cockroachdb.enabled }}
- name: DATABASE_DIALECT
  value: cockroach
{{- else }}
- name: DATABASE_DIALECT
  value: {{ .Values.externalDatabase.dialect | quote }}
{{- end }}
- name: DATABASE_URL
  valueFrom:
    {{- include "shoal.secretRef" (dict "root" . "existing" (ternary .Values.externalDatabase.existingSecret "" .Values.externalDatabase.enabled) "existingKey" .Values.externalDatabase.existingSecretKey "ownKey" "database-url") | nindent 4 }}
{{- if and .Values.cockroachdb.enabled .Values.cockroachdb.tls.enabled }}
- name: PG_TLS_CA_FILE
  value: /etc/shoal/db-tls/ca.crt
- name: PG_TLS_CERT_FILE
  value: /etc/shoal/db-tls/tls.crt
- name: PG_TLS_KEY_FILE
  value: /etc/shoal/db-tls/tls.key
{{- else if and .Values.externalDatabase.enabled .Values.externalDatabase.tlsSecret }}
- name: PG_TLS
  value: "true"
- name: PG_TLS_CA_FILE
  value: /etc/shoal/db-tls/ca.crt
{{- end }}
- name: PG_POOL_SIZE
  value: {{ .Values.storageApi.pgPoolSize | quote }}
{{- end -}}

{{/* The database URL the chart's own CockroachDB serves to the Shoal user. */}}
{{- define "shoal.cockroachURL" -}}
{{- $host := printf "%s-public.%s.svc" (include "shoal.cockroachName" .) .Release.Namespace -}}
{{- if .Values.cockroachdb.tls.enabled -}}
{{- printf "postgresql://%s@%s:26257/%s?sslmode=verify-full" .Values.cockroachdb.user $host .Values.cockroachdb.database -}}
{{- else -}}
{{- printf "postgresql://%s@%s:26257/%s?sslmode=disable" .Values.cockroachdb.user $host .Values.cockroachdb.database -}}
{{- end -}}
{{- end -}}

{{- define "shoal.dbTlsVolume" -}}
{{- if and .Values.cockroachdb.enabled .Values.cockroachdb.tls.enabled }}
- name: db-tls
  secret:
    secretName: {{ include "shoal.cockroachTlsSecret" (dict "root" . "which" "user") }}
    defaultMode: 0400
{{- else if and .Values.externalDatabase.enabled .Values.externalDatabase.tlsSecret }}
- name: db-tls
  secret:
    secretName: {{ .Values.externalDatabase.tlsSecret }}
    defaultMode: 0400
{{- end }}
{{- end -}}

{{- define "shoal.dbTlsMount" -}}
{{- if or (and .Values.cockroachdb.enabled .Values.cockroachdb.tls.enabled) (and .Values.externalDatabase.enabled .Values.externalDatabase.tlsSecret) }}
- name: db-tls
  mountPath: /etc/shoal/db-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* Common pod-level bits. Args: root, component, values (the component's values). */}}
{{- define "shoal.podScheduling" -}}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.image.pullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
A CPU quantity ("2", 2, "1500m", "0.5") in millicores.
*/}}
{{- define "shoal.cpuMillis" -}}
{{- $q := toString . -}}
{{- if hasSuffix "m" $q -}}
{{- trimSuffix "m" $q | int -}}
{{- else -}}
{{- mulf (float64 $q) 1000 | int -}}
{{- end -}}
{{- end -}}

{{/*
GATEWAY_WORKERS (docs/workers.md): gateway.workers when set, else one per
whole CPU of the CPU limit, else of the CPU request rounded up; at least 1.
The gateway's own default (the node's CPUs when no limit is set) would start
a worker per core of the node whatever the pod was given.
*/}}
{{- define "shoal.gatewayWorkers" -}}
{{- $v := .Values.gateway -}}
{{- $res := $v.resources | default dict -}}
{{- $limit := dig "limits" "cpu" "" $res -}}
{{- $request := dig "requests" "cpu" "" $res -}}
{{- if gt (int $v.workers) 0 -}}
{{- int $v.workers -}}
{{- else if $limit -}}
{{- max 1 (div (include "shoal.cpuMillis" $limit | int) 1000) -}}
{{- else if $request -}}
{{- max 1 (div (add (include "shoal.cpuMillis" $request | int) 999) 1000) -}}
{{- else -}}
1
{{- end -}}
{{- end -}}
