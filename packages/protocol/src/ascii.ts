// The ASCII codes the text codecs (bencode, HTTP queries) compare bytes with.
export const CH_PCT = 0x25;
export const CH_AMP = 0x26;
export const CH_PLUS = 0x2b;
export const CH_MINUS = 0x2d;
export const CH_0 = 0x30;
export const CH_9 = 0x39;
export const CH_COLON = 0x3a;
export const CH_EQ = 0x3d;
export const CH_D = 0x64;
export const CH_E = 0x65;
export const CH_I = 0x69;
export const CH_L = 0x6c;
