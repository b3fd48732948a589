"""GLSL of the synthetic hand rasteriser (:mod:`.raster`).

Instanced draws render a whole batch into an atlas of tiles: instance i is sample i. The
vertex shader skins the template mesh with sample i's bone matrices (linear blend skinning,
the same arithmetic as :func:`.skinning.pose_vertices`), projects it with sample i's K into
its tile and clips it to the tile with four clip distances. The fragment shader shades skin
(see :data:`FRAGMENT`) and writes a label target (camera z, part id + 1). A resolve pass
averages the multisampled colour (anti-aliased, premultiplied by coverage) and takes the label
of the nearest covered sample where at least half of the samples are covered.

Per-sample parameters are texels of an RGBA32F texture, row = sample:

* 0-62: the 21 skinning matrices, 3 rows (a0, a1, a2, t) each;
* 63: (finger, palm, forearm) thickening ``k - 1`` and the mirror sign (-1 for a left hand);
* 64, 65: rows of K (k00, k01, k02, tile x0) and (k10, k11, k12, tile y0), pixels;
* 66-77: appearance (:data:`APPEARANCE_SLOTS`, filled by :mod:`.appearance`).
"""

from __future__ import annotations

from typing import Final

__all__ = ["SKIN_SLOTS", "APPEARANCE_OFFSET", "APPEARANCE_SLOTS", "NUM_PARAM_SLOTS", "VERTEX",
           "FRAGMENT", "RESOLVE_VERTEX", "RESOLVE_FRAGMENT"]

SKIN_SLOTS: Final = 63
APPEARANCE_OFFSET: Final = 66
APPEARANCE_SLOTS: Final = 12
NUM_PARAM_SLOTS: Final = APPEARANCE_OFFSET + APPEARANCE_SLOTS

VERTEX: Final = """
#version 330
uniform sampler2D u_params;
uniform vec2 u_tile;
uniform vec2 u_atlas;
uniform vec2 u_depth;  // A, B of clip z = A z + B
uniform int u_first;   // parameter row of instance 0
in vec3 in_rest;
in vec3 in_nrm;
in vec4 in_bones;
in vec4 in_weights;
in vec3 in_region;
in vec3 in_rad_f;
in vec3 in_rad_p;
in vec3 in_rad_a;
in vec4 in_shade_a;
in vec4 in_shade_b;
in vec2 in_shade_c;
in float in_part;
out vec3 v_pos;
out vec3 v_nrm;
out vec3 v_rest;
out vec4 v_sa;
out vec4 v_sb;
out vec2 v_sc;
flat out int v_sample;
flat out float v_part;
out float gl_ClipDistance[4];

vec4 P(int k) { return texelFetch(u_params, ivec2(k, u_first + gl_InstanceID), 0); }

void main() {
    vec4 kk = P(63);
    vec3 rest = in_rest + in_region.x * kk.x * in_rad_f + in_region.y * kk.y * in_rad_p
        + in_region.z * kk.z * in_rad_a;
    vec4 r0 = vec4(0.0);
    vec4 r1 = vec4(0.0);
    vec4 r2 = vec4(0.0);
    for (int i = 0; i < 4; i++) {
        float w = in_weights[i];
        if (w > 0.0) {
            int b = 3 * int(in_bones[i] + 0.5);
            r0 += w * P(b);
            r1 += w * P(b + 1);
            r2 += w * P(b + 2);
        }
    }
    vec4 h = vec4(rest, 1.0);
    vec3 p = vec3(dot(r0, h), dot(r1, h), dot(r2, h));
    vec3 n = vec3(dot(r0.xyz, in_nrm), dot(r1.xyz, in_nrm), dot(r2.xyz, in_nrm));
    p.x *= kk.w;
    n.x *= kk.w;
    vec4 k0 = P(64);
    vec4 k1 = P(65);
    float z = p.z;
    float u = dot(k0.xyz, p);  // = z * pixel u
    float v = dot(k1.xyz, p);
    gl_Position = vec4((k0.w * z + u + 0.5 * z) / u_atlas.x * 2.0 - z,
                       (k1.w * z + v + 0.5 * z) / u_atlas.y * 2.0 - z,
                       u_depth.x * z + u_depth.y, z);
    gl_ClipDistance[0] = u + 0.5 * z;
    gl_ClipDistance[1] = (u_tile.x - 0.5) * z - u;
    gl_ClipDistance[2] = v + 0.5 * z;
    gl_ClipDistance[3] = (u_tile.y - 0.5) * z - v;
    v_pos = p;
    v_nrm = n;
    v_rest = in_rest;
    v_sa = in_shade_a;
    v_sb = in_shade_b;
    v_sc = in_shade_c;
    v_sample = u_first + gl_InstanceID;
    v_part = in_part;
}
"""

FRAGMENT: Final = """
#version 330
uniform sampler2D u_params;
uniform vec4 u_crease[3];       // palm crease arcs: centre x, y (mm), radius (mm), mid angle
uniform vec4 u_crease_span[3];  // half angle span, line width (mm), strength, -
in vec3 v_pos;
in vec3 v_nrm;
in vec3 v_rest;
in vec4 v_sa;
in vec4 v_sb;
in vec2 v_sc;
flat in int v_sample;
flat in float v_part;
layout(location = 0) out vec4 f_color;
layout(location = 1) out vec2 f_label;

vec4 A(int k) { return texelFetch(u_params, ivec2(66 + k, v_sample), 0); }

float hash13(vec3 p) {
    p = fract(p * 0.1031);
    p += dot(p, p.zyx + 31.32);
    return fract((p.x + p.y) * p.z);
}

float vnoise(vec3 x) {
    vec3 i = floor(x);
    vec3 f = fract(x);
    vec3 u = f * f * (3.0 - 2.0 * f);
    return mix(mix(mix(hash13(i), hash13(i + vec3(1, 0, 0)), u.x),
                   mix(hash13(i + vec3(0, 1, 0)), hash13(i + vec3(1, 1, 0)), u.x), u.y),
               mix(mix(hash13(i + vec3(0, 0, 1)), hash13(i + vec3(1, 0, 1)), u.x),
                   mix(hash13(i + vec3(0, 1, 1)), hash13(i + vec3(1, 1, 1)), u.x), u.y), u.z);
}

void main() {
    vec4 a0 = A(0); vec4 a1 = A(1); vec4 a2 = A(2); vec4 a3 = A(3);
    vec4 a4 = A(4); vec4 a5 = A(5); vec4 a6 = A(6); vec4 a7 = A(7);
    vec4 a8 = A(8); vec4 a9 = A(9); vec4 a10 = A(10); vec4 a11 = A(11);
    vec3 n = normalize(v_nrm);
    vec3 V = normalize(-v_pos);
    float ndv = dot(n, V);
    if (ndv < 0.05) {  // interpolated normals turning away at silhouettes
        n = normalize(n + V * (0.05 - ndv));
        ndv = dot(n, V);
    }
    float volar = v_sa.x;
    float ao = v_sa.y;
    float arm = v_sa.z;
    float nu = v_sa.w;
    float nv = v_sb.x;
    float c1 = v_sb.y * 1000.0;  // mm from the PIP (thumb MCP) along the finger
    float c2 = v_sc.x * 1000.0;  // mm from the DIP (thumb IP)
    float palmw = v_sb.z;
    float fingw = v_sb.w;
    vec3 pr = v_rest * 1000.0;
    vec3 q = pr + vec3(17.0, 31.0, 7.0) * a4.w;
    float ts = a3.w;
    float cs = a5.w;

    // albedo: back of the hand vs palm side, mottling, pores
    vec3 alb = mix(a5.rgb, a6.rgb, smoothstep(0.3, 0.9, volar));
    float blot = vnoise(q * 0.08) - 0.5;
    float blot2 = vnoise(q * 0.22 + 11.0) - 0.5;
    alb *= 1.0 + ts * (0.25 * blot + 0.12 * blot2);
    alb.r *= 1.0 + ts * 0.08 * blot2;
    float footprint = length(fwidth(pr));  // mm per pixel
    if (footprint < 1.2) {  // pores only when a pixel is smaller than them
        alb *= 1.0 + ts * 0.10 * (1.0 - footprint / 1.2) * (vnoise(q * 1.7) - 0.5);
    }
    // redness at knuckles and fingertips
    float knuck = (exp(-c1 * c1 / 20.0) + exp(-c2 * c2 / 14.0)) * fingw;
    float tip = smoothstep(0.55, 1.0, nu);
    alb = mix(alb, alb * vec3(1.03, 0.80, 0.78), a7.w * clamp(0.6 * knuck + 0.6 * tip, 0.0, 1.0));
    // dorsal wrinkles at the finger joints, volar flexion creases
    float back = 1.0 - smoothstep(0.2, 0.6, volar);
    float wave = 3.0 * vnoise(q * 0.4);
    float wr = exp(-c1 * c1 / 16.0) * (0.5 + 0.5 * cos(c1 * 4.6 + wave))
        + 0.7 * exp(-c2 * c2 / 9.0) * (0.5 + 0.5 * cos(c2 * 5.5 + wave));
    float patch = smoothstep(0.35, 0.75, vnoise(q * 0.25 + 5.0));  // wrinkles break up
    alb *= 1.0 - cs * 0.16 * wr * back * fingw * patch;
    float fl = exp(-c1 * c1 / 0.35) + exp(-(c1 - 1.6) * (c1 - 1.6) / 0.3)
        + exp(-c2 * c2 / 0.3);
    alb *= 1.0 - cs * 0.25 * clamp(fl, 0.0, 1.0) * smoothstep(0.6, 0.95, volar) * fingw;
    // palm creases
    float palmside = smoothstep(0.55, 0.95, volar) * palmw;
    for (int c = 0; c < 3 && palmside > 0.0; c++) {
        vec2 d = pr.xy - u_crease[c].xy;
        float ang = atan(d.y, d.x) - u_crease[c].w;
        ang = mod(ang + 3.14159265, 6.2831853) - 3.14159265;
        float inside = 1.0 - smoothstep(u_crease_span[c].x * 0.85, u_crease_span[c].x, abs(ang));
        float dr = (length(d) - u_crease[c].z) / u_crease_span[c].y;
        alb *= 1.0 - cs * u_crease_span[c].z * exp(-dr * dr) * inside * palmside;
    }
    // nails: nail bed on the back of the distal phalanges, whiter free edge, lunula
    float nmask = smoothstep(0.40, 0.46, nu) * (1.0 - smoothstep(0.95, 1.0, nu))
        * (1.0 - smoothstep(0.60, 0.72, abs(nv))) * a6.w;
    vec3 nailc = mix(a7.rgb, vec3(0.86, 0.84, 0.80), smoothstep(0.86, 0.93, nu));
    nailc = mix(nailc, vec3(0.92, 0.86, 0.84), 0.5 * (1.0 - smoothstep(0.44, 0.52, nu)));
    alb = mix(alb, nailc, nmask);
    // sleeve
    float sleeve = smoothstep(a8.w, a8.w + 0.003, arm);
    if (sleeve > 0.0) {
        float pat = 0.0;
        if (a10.z > 1.5) {
            pat = step(0.5, fract(arm * a10.w));  // rings around the arm
        } else if (a10.z > 0.5) {
            pat = smoothstep(0.35, 0.65, vnoise(q * 0.05 * a10.w / 40.0));  // blotchy print
        }
        vec3 sc = mix(a8.rgb, a11.rgb, pat);
        sc *= 1.0 + 0.2 * (vnoise(q * 0.9) - 0.5) + 0.1 * (vnoise(q * 0.15) - 0.5);
        alb = mix(alb, sc, sleeve);
    }

    // lighting: wrapped (subsurface-like) diffuse, hemisphere ambient with AO, fill, specular
    vec3 L = a0.xyz;
    float ndl = dot(n, L);
    vec3 wrap = a2.w * vec3(1.0, 0.55, 0.42) * (1.0 - 0.8 * sleeve);
    vec3 diff = clamp((ndl + wrap) / (1.0 + wrap), 0.0, 1.0);
    float hemi = 0.5 + 0.5 * dot(n, a4.xyz);
    vec3 amb = mix(a3.rgb, a2.rgb, hemi) * mix(1.0, ao, 0.85);
    vec3 fill = a2.rgb * a9.w * max(dot(n, a9.xyz), 0.0);
    vec3 H = normalize(L + V);
    float shin = a1.w * (1.0 + 1.0 * nmask);
    float fres = 0.04 + 0.96 * pow(1.0 - clamp(ndv, 0.0, 1.0), 5.0);
    float spec = a0.w * (1.0 + 0.8 * nmask) * (1.0 - 0.85 * sleeve)
        * pow(max(dot(n, H), 0.0), shin) * (shin + 8.0) / 25.0 * (0.6 + fres)
        * smoothstep(-0.05, 0.15, ndl) * (0.5 + vnoise(q * 0.6));
    vec3 col = alb * (amb + a1.rgb * diff * mix(1.0, ao, 0.35) + fill) + a1.rgb * spec * ao;
    col *= a10.x;
    col = col / (1.0 + 0.15 * col);
    col = pow(clamp(col, 0.0, 1.0), vec3(1.0 / a10.y));
    f_color = vec4(col, 1.0);
    f_label = vec2(v_pos.z, v_part + 1.0);
}
"""

RESOLVE_VERTEX: Final = """
#version 330
void main() {
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
"""

RESOLVE_FRAGMENT: Final = """
#version 330
uniform sampler2DMS u_color;
uniform sampler2DMS u_label;
uniform int u_samples;
layout(location = 0) out vec4 o_color;
layout(location = 1) out vec2 o_label;
void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    vec4 c = vec4(0.0);
    float zmin = 1e30;
    float part = 0.0;
    int cov = 0;
    for (int i = 0; i < u_samples; i++) {
        c += texelFetch(u_color, p, i);
        vec2 l = texelFetch(u_label, p, i).xy;
        if (l.y > 0.5) {
            cov += 1;
            if (l.x < zmin) { zmin = l.x; part = l.y; }
        }
    }
    o_color = c / float(u_samples);
    o_label = (2 * cov >= u_samples) ? vec2(zmin, part) : vec2(0.0);
}
"""
