"""The quick audience box: one line as marketers write it ("上海+女性+喜欢运动鞋+高购买频率",
"women in Shanghai who like sneakers, high spend") → a definition in the condition
language, the pieces not understood (with their spans), ambiguities and "did you mean".

lexicon.py: what the words mean (taxonomy, places, thresholds…) and the jieba tokenizer;
parse.py: the line → conditions; models.py: the named thresholds (高消费, 高购买频率…)."""
